#!/usr/bin/env python3
"""The HTTP API's routes in template.yaml, generated from openapi.yaml.

openapi.yaml (the contract) cannot be the HTTP API's body as it stands: API Gateway imports
OpenAPI 3.0 only (the contract is 3.1), and a route's authorization depends on the Authorizer
parameter, an Fn::If that SAM refuses in the HttpApi's Auth and that would make the contract
invalid for every OpenAPI tool if written in its `security`. So LeadsApi keeps a small inline
OpenAPI 3.0 body, and its `paths` (between the BEGIN/END comments in template.yaml) are
generated from the contract: one route per operation, with its operationId and the
conditional `security`.

    python3 scripts/api_routes.py           check (make lint-template): fails on any drift
    python3 scripts/api_routes.py --write   regenerate the paths after editing openapi.yaml

The check also requires the functions' HttpApi events, from which SAM adds the Lambda
integrations, to be exactly the contract's operations on LeadsApi: SAM silently adds an
event's route missing from the body, and such a route would have no authorization.
"""
import pathlib
import sys

try:
    import yaml
except ImportError:
    sys.exit("scripts/api_routes.py needs PyYAML (cfn-lint brings it): pip install pyyaml")

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "openapi.yaml"
TEMPLATE = ROOT / "template.yaml"
API = "LeadsApi"
BEGIN = "        # BEGIN paths generated from openapi.yaml by scripts/api_routes.py --write\n"
END = "        # END paths generated from openapi.yaml\n"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The route's authorization by the Authorizer parameter; the schemes are in the body's
# components, next to the generated paths.
SECURITY = """\
              security: !If
                - ApiJwtAuth
                - [{ LeadsJwt: [] }]
                - !If [ApiIamAuth, [{ AWS_IAM: [] }], !Ref AWS::NoValue]
"""


def operations(contract):
    """(path, method, operationId) of every operation, paths in the contract's order."""
    return [
        (path, method, item[method].get("operationId"))
        for path, item in contract["paths"].items()
        for method in METHODS
        if method in item
    ]


def render(ops):
    text = "        paths:\n"
    for i, (path, method, operation_id) in enumerate(ops):
        if i == 0 or ops[i - 1][0] != path:
            text += f"          {path}:\n"
        text += f"            {method}:\n"
        if operation_id:
            text += f"              operationId: {operation_id}\n"
        text += SECURITY
    return text


class CfnLoader(yaml.SafeLoader):
    """Reads short-form intrinsics (!Ref, !If, ...) as their long form."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def drift(template_text, ops):
    """What in template.yaml disagrees with the contract's operations (empty: nothing)."""
    wanted = {(path, method) for path, method, _ in ops}
    problems = []
    resources = yaml.load(template_text, Loader=CfnLoader)["Resources"]
    paths = resources[API]["Properties"]["DefinitionBody"]["paths"]
    routes = {(path, method) for path, item in paths.items() for method in item}
    if routes != wanted:
        problems.append(f"{API}'s routes {sorted(routes)} are not the contract's {sorted(wanted)}")
    events = []
    for name, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            if props.get("ApiId") != {"Ref": API}:
                problems.append(f"{name}.{event_name} is not on {API}")
            events.append((props.get("Path"), str(props.get("Method", "")).lower()))
    if sorted(events) != sorted(wanted):
        problems.append(
            f"the functions' HttpApi events {sorted(events)} are not the contract's operations,"
            " once each"
        )
    return problems


def main():
    write = sys.argv[1:] == ["--write"]
    if sys.argv[1:] not in ([], ["--write"]):
        sys.exit(__doc__)
    ops = operations(yaml.safe_load(CONTRACT.read_text()))
    text = TEMPLATE.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        sys.exit(f"template.yaml must hold the lines\n{BEGIN}{END}once each, around {API}'s paths")
    head, rest = text.split(BEGIN)
    current, tail = rest.split(END)
    generated = render(ops)
    if write:
        text = head + BEGIN + generated + END + tail
        TEMPLATE.write_text(text)
    elif current != generated:
        sys.exit(
            f"{API}'s paths in template.yaml differ from openapi.yaml's operations; "
            "run: python3 scripts/api_routes.py --write"
        )
    problems = drift(text, ops)
    if problems:
        sys.exit("template.yaml drifts from openapi.yaml:\n  " + "\n  ".join(problems))
    print(f"template.yaml routes match openapi.yaml: {len(ops)} operations")


if __name__ == "__main__":
    main()
