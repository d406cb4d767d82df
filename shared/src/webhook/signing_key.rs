//! Where the signing secret comes from: `WEBHOOK_SECRET` itself, or on AWS the Secrets
//! Manager secret `WEBHOOK_SECRET_ARN` names (its `SecretString` is the `whsec_` text), read
//! on first use as `DATABASE_AUTH=secret` reads the database's, and kept for the execution
//! environment's life (a failed read is tried again at the next delivery).

use super::WebhookSecret;
use crate::aws::db_auth::{AwsIdentity, read_secret_string};
use std::sync::Arc;
use tokio::sync::OnceCell;

#[derive(Clone, Debug, Default)]
pub enum SigningKey {
    /// Neither variable set: webhooks are off.
    #[default]
    Off,
    Value(WebhookSecret),
    SecretsManager(Arc<SecretsManagerKey>),
}

#[derive(Debug)]
pub struct SecretsManagerKey {
    identity: AwsIdentity,
    endpoint: String,
    secret_id: String,
    key: OnceCell<WebhookSecret>,
}

impl SigningKey {
    pub fn from_secrets_manager(
        identity: AwsIdentity,
        endpoint: String,
        secret_id: String,
    ) -> Self {
        SigningKey::SecretsManager(Arc::new(SecretsManagerKey {
            identity,
            endpoint,
            secret_id,
            key: OnceCell::new(),
        }))
    }

    /// The key to sign with now; `None` when off or unreadable (logged, naming no secret).
    pub async fn get(&self) -> Option<WebhookSecret> {
        match self {
            SigningKey::Off => None,
            SigningKey::Value(key) => Some(key.clone()),
            SigningKey::SecretsManager(source) => source
                .key
                .get_or_try_init(|| async {
                    let text =
                        read_secret_string(&source.identity, &source.endpoint, &source.secret_id)
                            .await
                            .map_err(|e| e.to_string())?;
                    WebhookSecret::parse(&text).ok_or_else(|| {
                        "the secret is not whsec_ and base64 of at least 24 bytes".to_owned()
                    })
                })
                .await
                .inspect_err(
                    |e| tracing::error!(error = %e, "could not read WEBHOOK_SECRET_ARN's secret"),
                )
                .ok()
                .cloned(),
        }
    }
}
