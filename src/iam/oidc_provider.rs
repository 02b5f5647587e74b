//! OpenID Connect providers: reading one by ARN, its mutations, listing them, deleting one.

use std::collections::{BTreeMap, BTreeSet};

use super::{ErrorKind, Iam, IamError, found, tags_of, to_tags};

/// An OIDC provider as IAM has it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedOidcProvider {
    pub arn: String,
    /// As IAM answers it: without `https://`.
    pub url: String,
    pub client_ids: BTreeSet<String>,
    /// Lowercase hex.
    pub thumbprints: BTreeSet<String>,
    pub tags: BTreeMap<String, String>,
}

impl Iam {
    /// The provider with its client ids, thumbprints and tags (one GetOpenIDConnectProvider);
    /// `None` when it does not exist.
    pub async fn observe_oidc_provider(
        &self,
        arn: &str,
    ) -> Result<Option<ObservedOidcProvider>, IamError> {
        let out = self
            .paced(
                self.client
                    .get_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send(),
            )
            .await;
        let Some(out) = found(self.done("GetOpenIDConnectProvider", out))? else {
            return Ok(None);
        };
        Ok(Some(ObservedOidcProvider {
            arn: arn.to_string(),
            url: out.url().unwrap_or_default().to_string(),
            client_ids: out.client_id_list().iter().cloned().collect(),
            thumbprints: out
                .thumbprint_list()
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect(),
            tags: tags_of(out.tags()),
        }))
    }

    /// Every provider's ARN (ListOpenIDConnectProviders answers all at once).
    pub async fn list_oidc_providers(&self) -> Result<Vec<String>, IamError> {
        let out = self
            .paced(self.client.list_open_id_connect_providers().send())
            .await;
        Ok(self
            .done("ListOpenIDConnectProviders", out)?
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_string))
            .collect())
    }

    pub async fn create_oidc_provider(
        &self,
        url: &str,
        client_ids: &BTreeSet<String>,
        thumbprints: Option<&BTreeSet<String>>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .create_open_id_connect_provider()
                    .url(url)
                    .set_client_id_list(Some(client_ids.iter().cloned().collect()))
                    .set_thumbprint_list(thumbprints.map(|t| t.iter().cloned().collect()))
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("CreateOpenIDConnectProvider", out).map(drop)
    }

    /// Idempotent in IAM: adding a client id it has already is no error.
    pub async fn add_client_id(&self, arn: &str, client_id: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(client_id)
                    .send(),
            )
            .await;
        self.done("AddClientIDToOpenIDConnectProvider", out)
            .map(drop)
    }

    pub async fn remove_client_id(&self, arn: &str, client_id: &str) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .remove_client_id_from_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .client_id(client_id)
                    .send(),
            )
            .await;
        self.done("RemoveClientIDFromOpenIDConnectProvider", out)
            .map(drop)
    }

    pub async fn update_thumbprints(
        &self,
        arn: &str,
        thumbprints: &BTreeSet<String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .update_open_id_connect_provider_thumbprint()
                    .open_id_connect_provider_arn(arn)
                    .set_thumbprint_list(Some(thumbprints.iter().cloned().collect()))
                    .send(),
            )
            .await;
        self.done("UpdateOpenIDConnectProviderThumbprint", out)
            .map(drop)
    }

    pub async fn tag_oidc_provider(
        &self,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .tag_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("TagOpenIDConnectProvider", out).map(drop)
    }

    pub async fn untag_oidc_provider(&self, arn: &str, keys: &[String]) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .untag_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send(),
            )
            .await;
        self.done("UntagOpenIDConnectProvider", out).map(drop)
    }

    /// Deletes the provider. `ours` judges its tags as read just now.
    pub async fn delete_oidc_provider_completely(
        &self,
        arn: &str,
        ours: &(dyn Fn(&BTreeMap<String, String>) -> bool + Sync),
    ) -> Result<(), IamError> {
        let Some(provider) = self.observe_oidc_provider(arn).await? else {
            return Ok(());
        };
        super::prune::still_ours(
            &provider.tags,
            ours,
            &format!("OIDC provider {arn}"),
            "DeleteOpenIDConnectProvider",
        )?;
        let out = self
            .paced(
                self.client
                    .delete_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send(),
            )
            .await;
        match self.done("DeleteOpenIDConnectProvider", out) {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }
}
