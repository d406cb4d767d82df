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
//! `leads-local cache-token` prints an ElastiCache IAM auth token (15 minutes) for
//! `REDIS_IAM_USER` on `REDIS_IAM_CACHE_ARN`, signed with the AWS credentials in the
//! environment: `redis-cli`'s password (`REDISCLI_AUTH`) for a cache with IAM authentication.

use anyhow::Context as _;
use local_servers::{PostgresServer, RedisServer, create_database};
use shared::app::App;
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
        "try:\n  curl -i -X POST {url}/leads/import -H 'Content-Type: application/json' \\\n    -d '{{\"importId\":\"unique-import-id\",\"leads\":[{{\"fullName\":\"John Doe\",\"email\":\"john@example.com\",\"phone\":\"+1234567890\",\"status\":\"NEW\",\"source\":\"WEBSITE\"}}],\"createdBy\":\"507f1f77bcf86cd799439011\"}}'\n  curl -s {url}/leads/import/unique-import-id/status"
    );
    shared::local_run::serve(listener, app, shutdown_signal()).await?;
    Ok(())
}

/// `leads-local migrate`: the functions' own constructor, so `DATABASE_AUTH` applies too.
async fn migrate() -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("DATABASE_URL").is_some(),
        "set DATABASE_URL to the database to migrate"
    );
    App::from_env()
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
    let report = shared::redrive::redrive_dead_letters(&App::from_env().await?, only).await?;
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
    let erased = App::from_env()
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
