//! The RDS JSON format of a database secret. Parsed so that no value of it, the password
//! least of all, reaches a `Debug` string or an error message: both end up in logs.

use std::fmt;

use serde::Deserialize as _;

use super::DbAuthError;

/// An RDS database secret. A secret that RDS manages itself (`ManageMasterUserPassword`) holds
/// only `username` and `password`; the others are present in secrets made for a database by
/// the Secrets Manager console or rotation templates.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct RdsSecret {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "port_number_or_string")]
    pub port: Option<u16>,
    #[serde(default)]
    pub dbname: Option<String>,
}

impl fmt::Debug for RdsSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdsSecret")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish()
    }
}

fn port_number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("port is not a port number")),
    }
}

/// Parses a secret string in the RDS JSON format. Errors name what is wrong (a missing field,
/// the position of a syntax error) but never echo the secret's contents.
pub fn parse_rds_secret(secret_string: &str) -> Result<RdsSecret, DbAuthError> {
    serde_json::from_str::<RdsSecret>(secret_string).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => {
                // serde's messages for missing fields and our own custom one quote no value;
                // "invalid type"/"invalid value" ones may, so those are reduced to a category.
                let msg = e.to_string();
                if msg.starts_with("missing field") || msg.starts_with("port is not") {
                    msg.split(" at line")
                        .next()
                        .unwrap_or("invalid data")
                        .to_owned()
                } else {
                    "a field has the wrong type (expected strings, and a number or string port)"
                        .to_owned()
                }
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("not valid JSON (line {}, column {})", e.line(), e.column())
            }
            serde_json::error::Category::Io => "unreadable".to_owned(),
        };
        DbAuthError::SecretFormat(what)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rds_secrets() {
        let full = parse_rds_secret(
            r#"{"engine":"postgres","username":"leads","password":"p@ss\"w0rd","host":"db.example","port":5432,"dbname":"leads","dbInstanceIdentifier":"leads-db"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                full.username.as_str(),
                full.password.as_str(),
                full.host.as_deref(),
                full.port,
                full.dbname.as_deref()
            ),
            (
                "leads",
                "p@ss\"w0rd",
                Some("db.example"),
                Some(5432),
                Some("leads")
            )
        );
        let managed = parse_rds_secret(r#"{"username":"postgres","password":"x"}"#).unwrap();
        assert_eq!(
            (managed.host, managed.port, managed.dbname),
            (None, None, None)
        );
        assert_eq!(
            parse_rds_secret(r#"{"username":"u","password":"p","port":"6432"}"#)
                .unwrap()
                .port,
            Some(6432)
        );
        assert!(!format!("{full:?}").contains("w0rd"));
    }

    #[test]
    fn secret_errors_never_echo_the_secret() {
        for bad in [
            r#"{"username":"u"}"#,
            r#"{"username":"u","password":123456789}"#,
            r#"{"username":"u","password":"hunter2","port":"hunter2"}"#,
            r#"{"username":"u","password":"hunter2""#,
            "hunter2",
        ] {
            let err = parse_rds_secret(bad).unwrap_err().to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("123456789"),
                "{err}"
            );
        }
        assert!(
            parse_rds_secret(r#"{"username":"u"}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field `password`")
        );
    }
}
