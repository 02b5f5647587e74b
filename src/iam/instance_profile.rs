//! Instance profiles: reading one, its mutations, listing them, and deleting one with the role
//! it holds removed first (IAM refuses otherwise).

use std::collections::BTreeMap;

use super::{ErrorKind, Iam, IamError, PAGE_SIZE, found, missing, tags_of, to_tags};

/// An instance profile as IAM has it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedInstanceProfile {
    pub name: String,
    pub arn: String,
    pub path: String,
    /// The names of the roles it holds (IAM allows one; a list, as the API answers).
    pub roles: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Iam {
    /// The instance profile with its roles and tags (GetInstanceProfile returns both; listing
    /// calls do not return tags); `None` when it does not exist.
    pub async fn observe_instance_profile(
        &self,
        name: &str,
    ) -> Result<Option<ObservedInstanceProfile>, IamError> {
        let out = self
            .paced(
                self.client
                    .get_instance_profile()
                    .instance_profile_name(name)
                    .send(),
            )
            .await;
        let Some(out) = found(self.done("GetInstanceProfile", out))? else {
            return Ok(None);
        };
        let p = out
            .instance_profile()
            .ok_or_else(|| missing("GetInstanceProfile", "instance profile"))?;
        Ok(Some(ObservedInstanceProfile {
            name: p.instance_profile_name().to_string(),
            arn: p.arn().to_string(),
            path: p.path().to_string(),
            roles: p
                .roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .collect(),
            tags: tags_of(p.tags()),
        }))
    }

    /// Every instance profile's name (ListInstanceProfiles, paged).
    pub async fn list_instance_profiles(&self) -> Result<Vec<String>, IamError> {
        let mut names = Vec::new();
        self.pages(
            "ListInstanceProfiles",
            |marker| {
                self.client
                    .list_instance_profiles()
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                names.extend(
                    page.instance_profiles()
                        .iter()
                        .map(|p| p.instance_profile_name().to_string()),
                );
                Ok(true)
            },
        )
        .await?;
        Ok(names)
    }

    pub async fn create_instance_profile(
        &self,
        name: &str,
        path: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .create_instance_profile()
                    .instance_profile_name(name)
                    .path(path)
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("CreateInstanceProfile", out).map(drop)
    }

    pub async fn add_role_to_instance_profile(
        &self,
        profile: &str,
        role: &str,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .add_role_to_instance_profile()
                    .instance_profile_name(profile)
                    .role_name(role)
                    .send(),
            )
            .await;
        self.done("AddRoleToInstanceProfile", out).map(drop)
    }

    pub async fn remove_role_from_instance_profile(
        &self,
        profile: &str,
        role: &str,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .remove_role_from_instance_profile()
                    .instance_profile_name(profile)
                    .role_name(role)
                    .send(),
            )
            .await;
        self.done("RemoveRoleFromInstanceProfile", out).map(drop)
    }

    pub async fn tag_instance_profile(
        &self,
        profile: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .tag_instance_profile()
                    .instance_profile_name(profile)
                    .set_tags(Some(to_tags(tags)))
                    .send(),
            )
            .await;
        self.done("TagInstanceProfile", out).map(drop)
    }

    pub async fn untag_instance_profile(
        &self,
        profile: &str,
        keys: &[String],
    ) -> Result<(), IamError> {
        let out = self
            .paced(
                self.client
                    .untag_instance_profile()
                    .instance_profile_name(profile)
                    .set_tag_keys(Some(keys.to_vec()))
                    .send(),
            )
            .await;
        self.done("UntagInstanceProfile", out).map(drop)
    }

    /// Removes its roles, then deletes it. `ours` judges its tags as read just now.
    pub async fn delete_instance_profile_completely(
        &self,
        name: &str,
        ours: &(dyn Fn(&BTreeMap<String, String>) -> bool + Sync),
    ) -> Result<(), IamError> {
        let Some(profile) = self.observe_instance_profile(name).await? else {
            return Ok(());
        };
        super::prune::still_ours(
            &profile.tags,
            ours,
            &format!("instance profile {name}"),
            "DeleteInstanceProfile",
        )?;
        for role in &profile.roles {
            super::prune::gone_ok(self.remove_role_from_instance_profile(name, role).await)?;
        }
        let out = self
            .paced(
                self.client
                    .delete_instance_profile()
                    .instance_profile_name(name)
                    .send(),
            )
            .await;
        match self.done("DeleteInstanceProfile", out) {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }
}
