//! One parser for ARNs, used everywhere an ARN is taken apart: partition, service, region,
//! account, and for resources written `TYPE/PATH/NAME` (IAM's roles, policies, users, …) the
//! type, path and name. A leaf: it uses nothing of the crate, and nothing else splits an ARN
//! by hand, so the rules (the six parts, paths, account ids, partitions) live here once.

use std::fmt;

/// Why a string is not an ARN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("`{0}` is not an ARN: it must start with `arn:`")]
    NoPrefix(String),
    #[error("`{0}` is not an ARN: it has fewer than six `:`-separated parts")]
    TooFewParts(String),
    #[error("`{0}` is not an ARN: its partition is empty")]
    NoPartition(String),
    #[error("`{0}` is not an ARN: its service is empty")]
    NoService(String),
}

/// A parsed ARN, borrowing from the text it was parsed from.
///
/// Invariant: `partition` and `service` are never empty; `resource` is everything after the
/// fifth `:` (it may hold more `:` and `/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arn<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

impl<'a> Arn<'a> {
    pub fn parse(text: &'a str) -> Result<Arn<'a>, ArnError> {
        let Some(rest) = text.strip_prefix("arn:") else {
            return Err(ArnError::NoPrefix(text.to_string()));
        };
        let mut parts = rest.splitn(5, ':');
        let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ArnError::TooFewParts(text.to_string()));
        };
        if partition.is_empty() {
            return Err(ArnError::NoPartition(text.to_string()));
        }
        if service.is_empty() {
            return Err(ArnError::NoService(text.to_string()));
        }
        Ok(Arn {
            partition,
            service,
            region,
            account,
            resource,
        })
    }

    /// The resource type: `role` in `role/a/NAME`, `root` in `root`.
    pub fn resource_type(&self) -> &'a str {
        self.resource
            .split_once('/')
            .map_or(self.resource, |(kind, _)| kind)
    }

    /// The name of a `TYPE/[PATH/]NAME` resource; `None` when it has none.
    pub fn name(&self) -> Option<&'a str> {
        let (_, rest) = self.resource.split_once('/')?;
        let name = rest.rsplit_once('/').map_or(rest, |(_, name)| name);
        (!name.is_empty()).then_some(name)
    }

    /// The path of a `TYPE/[PATH/]NAME` resource: `/` or `/a/b/`; `None` when it has no name.
    pub fn path(&self) -> Option<String> {
        self.name()?;
        let (_, rest) = self.resource.split_once('/')?;
        Some(match rest.rsplit_once('/') {
            Some((dirs, _)) => format!("/{dirs}/"),
            None => "/".to_string(),
        })
    }

    /// An IAM resource of this type (`role`, `policy`, …).
    pub fn is_iam(&self, resource_type: &str) -> bool {
        self.service == "iam" && self.resource_type() == resource_type
    }

    /// A policy that AWS manages (`arn:aws:iam::aws:policy/…`), not a customer's.
    pub fn is_aws_managed_policy(&self) -> bool {
        self.is_iam("policy") && self.account == "aws"
    }
}

impl fmt::Display for Arn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// The name and path of an IAM ARN such as `arn:aws:iam::1:role/a/b/NAME`: `("NAME",
/// "/a/b/")`; `None` for anything that is not an ARN of a named resource.
pub fn name_and_path(text: &str) -> Option<(&str, String)> {
    let arn = Arn::parse(text).ok()?;
    Some((arn.name()?, arn.path()?))
}

/// What an OIDC provider's ARN names: its url without `https://`, as IAM keeps it.
pub fn oidc_provider_url(arn: &str) -> Option<&str> {
    arn.split_once(":oidc-provider/").map(|(_, url)| url)
}

/// The account an ARN belongs to, which makes ARNs of the same partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub partition: String,
    pub id: String,
}

impl Account {
    /// `arn:aws:iam::ACCOUNT:policy/PATH/NAME` of a customer-managed policy.
    pub fn policy_arn(&self, path: &str, name: &str) -> String {
        format!("arn:{}:iam::{}:policy{path}{name}", self.partition, self.id)
    }

    /// `arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME`.
    pub fn instance_profile_arn(&self, path: &str, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:instance-profile{path}{name}",
            self.partition, self.id
        )
    }

    /// `arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH` of the provider for issuer `url`.
    pub fn oidc_provider_arn(&self, url: &str) -> String {
        let host_path = url.strip_prefix("https://").unwrap_or(url);
        format!(
            "arn:{}:iam::{}:oidc-provider/{host_path}",
            self.partition, self.id
        )
    }

    /// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
    pub fn role_arn(&self, path: &str, name: &str) -> String {
        format!("arn:{}:iam::{}:role{path}{name}", self.partition, self.id)
    }

    /// From a caller identity ARN such as `arn:aws:sts::123456789012:assumed-role/x/y`.
    pub fn from_arn(text: &str) -> Option<Account> {
        let arn = Arn::parse(text).ok()?;
        is_account_id(arn.account).then(|| Account {
            partition: arn.partition.to_string(),
            id: arn.account.to_string(),
        })
    }
}

/// Twelve digits: what IAM takes for an account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arn_is_taken_apart_once() {
        for (text, partition, service, account, kind, name, path) in [
            (
                "arn:aws:iam::123456789012:role/a/b/R",
                "aws",
                "iam",
                "123456789012",
                "role",
                Some("R"),
                Some("/a/b/"),
            ),
            (
                "arn:aws-cn:iam::123456789012:policy/P",
                "aws-cn",
                "iam",
                "123456789012",
                "policy",
                Some("P"),
                Some("/"),
            ),
            (
                "arn:aws-us-gov:iam::aws:policy/service-role/X",
                "aws-us-gov",
                "iam",
                "aws",
                "policy",
                Some("X"),
                Some("/service-role/"),
            ),
            (
                "arn:aws:iam::123456789012:root",
                "aws",
                "iam",
                "123456789012",
                "root",
                None,
                None,
            ),
            (
                "arn:aws:iam::1:policy/a/",
                "aws",
                "iam",
                "1",
                "policy",
                None,
                None,
            ),
            (
                "arn:aws:s3:::bucket/key:with:colons",
                "aws",
                "s3",
                "",
                "bucket",
                Some("key:with:colons"),
                Some("/"),
            ),
        ] {
            let arn = Arn::parse(text).unwrap();
            assert_eq!(
                (
                    arn.partition,
                    arn.service,
                    arn.account,
                    arn.resource_type(),
                    arn.name(),
                    arn.path().as_deref()
                ),
                (partition, service, account, kind, name, path),
                "{text}"
            );
            assert_eq!(arn.to_string(), text);
        }
    }

    #[test]
    fn what_is_not_an_arn_says_why() {
        assert!(matches!(Arn::parse(""), Err(ArnError::NoPrefix(_))));
        assert!(matches!(
            Arn::parse("AROAEXAMPLE"),
            Err(ArnError::NoPrefix(_))
        ));
        assert!(matches!(
            Arn::parse("arn:aws:iam::1"),
            Err(ArnError::TooFewParts(_))
        ));
        assert!(matches!(
            Arn::parse("arn::iam::1:role/x"),
            Err(ArnError::NoPartition(_))
        ));
        assert!(matches!(
            Arn::parse("arn:aws:::1:role/x"),
            Err(ArnError::NoService(_))
        ));
        assert_eq!(
            Arn::parse("x").unwrap_err().to_string(),
            "`x` is not an ARN: it must start with `arn:`"
        );
    }

    #[test]
    fn kinds_of_iam_resources() {
        let aws = Arn::parse("arn:aws:iam::aws:policy/AdministratorAccess").unwrap();
        assert!(aws.is_aws_managed_policy() && aws.is_iam("policy") && !aws.is_iam("role"));
        let own = Arn::parse("arn:aws:iam::123456789012:policy/p").unwrap();
        assert!(!own.is_aws_managed_policy());
        let s3 = Arn::parse("arn:aws:s3:::policy/x").unwrap();
        assert!(!s3.is_iam("policy"));
    }

    #[test]
    fn an_account_comes_from_a_caller_arn() {
        let a = Account::from_arn("arn:aws:sts::123456789012:assumed-role/x/y").unwrap();
        assert_eq!(
            (a.partition.as_str(), a.id.as_str()),
            ("aws", "123456789012")
        );
        assert_eq!(
            a.policy_arn("/a/", "p"),
            "arn:aws:iam::123456789012:policy/a/p"
        );
        assert_eq!(a.role_arn("/", "r"), "arn:aws:iam::123456789012:role/r");
        assert_eq!(Account::from_arn("arn:aws:sts::12345:user/x"), None);
        assert_eq!(Account::from_arn("nonsense"), None);
    }
}
