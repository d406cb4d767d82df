//! leads-local: the whole pipeline in one process. Serves import-fn's and status-fn's
//! routers on 127.0.0.1:$PORT and calls drain-fn's handler on a schedule, as EventBridge would.
//! Without REDIS_URL / DATABASE_URL it starts private servers and stops them on exit.
//!
//! `leads-local migrate` only applies the migrations to $DATABASE_URL and exits (`make migrate`).
//! `leads-local redrive [DEAD_LETTER_ID]` puts dead letters back on the stream (`make redrive`).
//! `leads-local erase-dead-letters [DEAD_LETTER_ID]` deletes dead letters and the personal data
//! they hold; their leads stay failed in their jobs (`make erase-dead-letters`).
//! `leads-local servers` only starts the private servers, prints their URLs as `KEY=value`
//! lines, and keeps them until SIGTERM or Ctrl-C (the Lambda emulator test runs the functions
//! against them).
//!
//! The operator commands (`migrate`, `redrive`, `erase-dead-letters`) honour `DATABASE_AUTH` as
//! the functions do, but sign the RDS IAM token or the Secrets Manager call with the operator's
//! AWS login, resolved by `aws-config` (environment, `aws sso login`, profiles, ...), not with a
//! Lambda role's environment variables.
//! `leads-local cache-token` prints an ElastiCache IAM auth token (15 minutes) for
//! `REDIS_IAM_USER` on `REDIS_IAM_CACHE_ARN`, signed with the AWS credentials in the
//! environment: `redis-cli`'s password (`REDISCLI_AUTH`) for a cache with IAM authentication.

use anyhow::Context as _;
use local_servers::{PostgresServer, RedisServer, create_database};
use shared::app::App;
use shared::aws::db_auth::{AwsIdentity, DatabaseAuth};
use shared::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let command = std::env::args().nth(1);
    match command.as_deref() {
        Some("migrate") => return migrate().await,
        Some("redrive") => return redrive(std::env::args().nth(2).as_deref()).await,
        Some("erase-dead-letters") => {
            return erase_dead_letters(std::env::args().nth(2).as_deref()).await;
        }
        Some("cache-token") => return cache_token().await,
        Some("servers") | None => {}
        Some(other) => {
            anyhow::bail!(
                "unknown command {other:?}: use migrate, redrive [ID], erase-dead-letters [ID], cache-token, servers, or none"
            )
        }
    }
    let servers_only = command.is_some();
    let mut config = Config::from_env()?;
    // Kept alive until the end of main; dropping them stops the servers.
    let mut _redis = None;
    let mut _postgres = None;
    if std::env::var_os("REDIS_URL").is_none() {
        let server = RedisServer::start().context("starting a private redis-server")?;
        config.redis_url = server.url();
        _redis = Some(server);
    }
    if std::env::var_os("DATABASE_URL").is_none() {
        let server = PostgresServer::start().context("starting a private PostgreSQL")?;
        create_database(&server.url("postgres"), "leads")
            .await
            .context("creating database leads")?;
        config.database_url = server.url("leads");
        _postgres = Some(server);
    }
    let port = config.port;
    if servers_only {
        println!(
            "REDIS_URL={}\nDATABASE_URL={}",
            config.redis_url, config.database_url
        );
    }
    let app = App::new(config)?;
    app.store.migrate().await.context("applying migrations")?;
    if servers_only {
        println!("ready");
        shutdown_signal().await;
        return Ok(());
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("leads-local listening on {url}  (Ctrl-C stops it and its private servers)");
    println!(
        "try:\n  curl -i -X POST {url}/leads/import -H 'Content-Type: application/json' \\\n    -d '{{\"importId\":\"unique-import-id\",\"leads\":[{{\"fullName\":\"John Doe\",\"email\":\"john@example.com\",\"phone\":\"+1234567890\",\"status\":\"NEW\",\"source\":\"WEBSITE\"}}],\"createdBy\":\"507f1f77bcf86cd799439011\"}}'\n  curl -s {url}/leads/import/unique-import-id/status\n  curl -F file=@tests/fixtures/crm-contacts-export.csv -F importId=crm {url}/leads/import\n  curl -s {url}/leads/import/crm/status\nor a file of any size (cargo install --path cli):\n  leads --url {url} import tests/fixtures/crm-contacts-export.csv"
    );
    shared::local_run::serve(listener, app, shutdown_signal()).await?;
    Ok(())
}

/// The operator commands' App: `Config` and `DATABASE_AUTH` from the environment, signing as
/// the operator's AWS login ([`aws_sdk_config`]) when the database needs a token or a secret.
async fn operator_app() -> anyhow::Result<App> {
    let lookup = |name: &str| std::env::var(name).ok();
    let identity = match DatabaseAuth::from_lookup(lookup)? {
        DatabaseAuth::Password => None,
        _ => Some(
            AwsIdentity::from_sdk_config(&aws_sdk_config().load().await).context(
                "no AWS region: set AWS_REGION or AWS_PROFILE (with a region), or run aws configure",
            )?,
        ),
    };
    Ok(App::from_lookup_signing_as(lookup, identity).await?)
}

/// aws-config's default chain, with an HTTPS client over rustls and ring (no aws-lc).
fn aws_sdk_config() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::{Builder, tls};
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http)
}

/// `leads-local migrate` (`make migrate`): as the tables' owner, with `DATABASE_AUTH` too.
async fn migrate() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("DATABASE_URL").is_some(),
        "set DATABASE_URL to the database to migrate"
    );
    operator_app()
        .await?
        .store
        .migrate()
        .await
        .context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

/// `leads-local redrive [ID]`: dead letters of the deployment REDIS_URL/DATABASE_URL name.
async fn redrive(only: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("REDIS_URL").is_some() && std::env::var_os("DATABASE_URL").is_some(),
        "set REDIS_URL and DATABASE_URL to the deployment whose dead letters to re-drive"
    );
    let report = shared::redrive::redrive_dead_letters(&operator_app().await?, only).await?;
    println!(
        "re-driven: {}, left for inspection (undecodable): {}",
        report.requeued, report.undecodable
    );
    Ok(())
}

/// `leads-local erase-dead-letters [ID]`: on the deployment REDIS_URL names.
async fn erase_dead_letters(only: Option<&str>) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("REDIS_URL").is_some(),
        "set REDIS_URL to the deployment whose dead letters to erase"
    );
    let erased = operator_app()
        .await?
        .queue
        .erase_dead_letters(only)
        .await
        .context("erasing dead letters")?;
    println!("erased: {erased}");
    Ok(())
}

/// `leads-local cache-token`: what `App::from_env` signs in with under `REDIS_AUTH=iam`.
async fn cache_token() -> anyhow::Result<()> {
    use shared::aws::cache_auth::{CacheAuth, ElastiCacheTokenSource};
    use shared::aws::db_auth::AwsIdentity;
    let CacheAuth::Iam { user, cache } = CacheAuth::from_env()? else {
        anyhow::bail!("set REDIS_AUTH=iam, REDIS_IAM_USER and REDIS_IAM_CACHE_ARN");
    };
    let identity = AwsIdentity::from_lambda_env()
        .context("AWS_REGION and credentials in the environment (aws configure export-credentials --format env)")?;
    let token = ElastiCacheTokenSource::new(identity, cache, &user)
        .token()
        .await?;
    println!("{token}");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    println!("stopping");
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};

    /// An operator logged in through a named profile (as after `aws configure --profile ops`;
    /// `aws sso login` profiles resolve through the same chain): its region and keys sign the
    /// database token.
    #[tokio::test]
    async fn the_operators_profile_signs_the_database_token() {
        let dir = std::env::temp_dir().join(format!("leads-local-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (config, credentials) = (dir.join("config"), dir.join("credentials"));
        std::fs::write(&config, "[profile ops]\nregion = eu-west-1\n").unwrap();
        std::fs::write(
            &credentials,
            "[ops]\naws_access_key_id = AKIDOPERATOR\naws_secret_access_key = operator-secret\n",
        )
        .unwrap();
        let files = EnvConfigFiles::builder()
            .with_file(EnvConfigFileKind::Config, &config)
            .with_file(EnvConfigFileKind::Credentials, &credentials)
            .build();
        let sdk = aws_sdk_config()
            .profile_files(files)
            .profile_name("ops")
            .load()
            .await;
        std::fs::remove_dir_all(&dir).unwrap();
        let identity = AwsIdentity::from_sdk_config(&sdk).unwrap();
        // Variables in the environment come first in the chain, as they should.
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            assert_eq!(identity.region(), "eu-west-1");
        }
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            let token = shared::aws::db_auth::IamTokenSource::new(
                identity,
                "db.example.com",
                5432,
                "leads_migrator",
            )
            .token()
            .await
            .unwrap();
            assert!(
                token.password.contains("X-Amz-Credential=AKIDOPERATOR%2F"),
                "signed with the profile's key"
            );
        }
    }
}
