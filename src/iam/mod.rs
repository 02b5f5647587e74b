//! The thin layer over `aws-sdk-iam`: observe one role or policy, and the mutations.
//!
//! Every call goes through here, so every SDK error leaves classified (`error`), and every
//! request is counted for the metrics. No decisions are made here; that is the planner's job.

mod count;
mod error;
mod instance_profile;
mod mutate;
mod observed;
mod oidc_provider;
mod organizations;
mod pace;
mod prune;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_sdk_iam::types::Tag;
use aws_smithy_http_client::tls;
use aws_smithy_types::timeout::TimeoutConfig;

pub use count::{RequestCounts, RequestSink};
pub use error::{ErrorKind, IamError};
pub use instance_profile::ObservedInstanceProfile;
pub use observed::{Account, EntityKind, ObservedPolicy, ObservedRole, PolicyUser, PolicyVersion};
pub use oidc_provider::ObservedOidcProvider;
pub use organizations::OrgAccount;
pub use pace::{Pace, PaceReading};
pub use snapshot::Snapshot;

use crate::policy::PolicyDocument;

/// IAM's largest page (MaxItems): a listing of a large account in the fewest requests.
pub const PAGE_SIZE: i32 = 1000;

/// Roles and customer-managed policies in the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountCounts {
    pub roles: Option<u64>,
    pub policies: Option<u64>,
}

/// Called once per IAM call (whatever pages and retries it took) with the operation and its
/// error (`None`: it succeeded). [`RequestCounts`] counts the requests themselves.
pub type RequestObserver = Arc<dyn Fn(&'static str, Option<&IamError>) + Send + Sync>;

#[derive(Clone)]
pub struct Iam {
    client: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    organizations: aws_sdk_organizations::Client,
    /// The SDK's region: `${aws.region}`.
    region: String,
    observer: Option<RequestObserver>,
    /// Every request of both clients, each attempt and page.
    requests: Arc<RequestCounts>,
    /// The account's pace, shared by every clone (`None`: unpaced).
    pace: Option<Arc<Pace>>,
    /// The role this client assumes, named in its credentials failures.
    assumed: Option<Arc<str>>,
    /// The account it must reach (see [`Reach::account_id`]).
    account_id: Option<Arc<str>>,
}

/// How long a request may take: connecting, one attempt, and a whole call with its retries.
/// A black-holed endpoint fails a call within `operation`, so a resync never stalls for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: std::time::Duration,
    pub attempt: std::time::Duration,
    pub operation: std::time::Duration,
}

/// How to reach one account's IAM.
#[derive(Clone, Debug)]
pub struct Reach {
    /// IAM endpoint; `None`: AWS's.
    pub endpoint_url: Option<String>,
    /// The pace's ceiling, requests a second; 0: unpaced.
    pub max_rps: u32,
    pub timeouts: Timeouts,
    /// A role to assume from the process's own credentials; `None`: those credentials.
    pub assume: Option<Assume>,
    /// The account these credentials must reach (an accounts file's id): identifying any
    /// other is an error.
    pub account_id: Option<String>,
}

/// AssumeRole into another account. The SDK refreshes the session before it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assume {
    pub role_arn: String,
    pub external_id: Option<String>,
    /// Default `iam-warden`: what CloudTrail shows as the session.
    pub session_name: Option<String>,
    pub session_duration: Option<std::time::Duration>,
}

/// The SDK's default HTTPS client (hyper 1, rustls), with ring rather than aws-lc, which the
/// SDK's default features would build too (Cargo.toml).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Credentials and region from the standard chain; IAM is global, so the region only signs
/// requests and defaults to us-east-1.
pub async fn connect(reach: &Reach) -> Iam {
    // Not the default chain: its instance-metadata lookup stalls and warns off EC2.
    let region = RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
        .or_else(ProfileFileRegionProvider::new())
        .or_else("us-east-1");
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(reach.timeouts.connect)
        .operation_attempt_timeout(reach.timeouts.attempt)
        .operation_timeout(reach.timeouts.operation)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .timeout_config(timeouts)
        .http_client(http_client());
    if let Some(url) = &reach.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let mut conf = loader.load().await;
    if let Some(assume) = &reach.assume {
        conf = assumed(conf, assume).await;
    }
    let requests = Arc::new(RequestCounts::default());
    let pace = (reach.max_rps > 0).then(|| Arc::new(Pace::new(reach.max_rps)));
    let counting = || count::Counting {
        counts: requests.clone(),
        pace: pace.clone(),
    };
    let iam_conf = aws_sdk_iam::config::Builder::from(&conf)
        .interceptor(counting())
        .build();
    let sts_conf = aws_sdk_sts::config::Builder::from(&conf)
        .interceptor(counting())
        .build();
    let organizations_conf = aws_sdk_organizations::config::Builder::from(&conf)
        .interceptor(counting())
        .build();
    Iam {
        client: aws_sdk_iam::Client::from_conf(iam_conf),
        sts: aws_sdk_sts::Client::from_conf(sts_conf),
        organizations: aws_sdk_organizations::Client::from_conf(organizations_conf),
        region: conf
            .region()
            .map_or_else(|| "us-east-1".to_string(), ToString::to_string),
        observer: None,
        requests,
        pace,
        assumed: reach
            .assume
            .as_ref()
            .map(|a| Arc::from(a.role_arn.as_str())),
        account_id: reach.account_id.as_deref().map(Arc::from),
    }
}

/// `conf` with the credentials of `assume`'s role, assumed through STS (at the same endpoint)
/// with `conf`'s own credentials.
async fn assumed(conf: aws_config::SdkConfig, assume: &Assume) -> aws_config::SdkConfig {
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(&assume.role_arn)
        .session_name(assume.session_name.as_deref().unwrap_or("iam-warden"));
    if let Some(id) = &assume.external_id {
        builder = builder.external_id(id);
    }
    if let Some(d) = assume.session_duration {
        builder = builder.session_length(d);
    }
    let provider = builder.configure(&conf).build().await;
    conf.into_builder()
        .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
            provider,
        ))
        .build()
}

fn tags_of(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn to_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect()
}

fn document(operation: &'static str, text: Option<&str>) -> Result<PolicyDocument, IamError> {
    PolicyDocument::from_iam(text.unwrap_or_default()).map_err(|e| IamError {
        operation,
        kind: ErrorKind::Other,
        code: None,
        message: format!("IAM returned a policy document that cannot be read: {e}"),
    })
}

/// Not found is an answer, not an error, for an observation.
fn found<T>(result: Result<T, IamError>) -> Result<Option<T>, IamError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One page of a listing: where the next page starts, if there is one.
trait Page {
    fn next_marker(&self) -> Option<String>;
}

macro_rules! pages_of {
    ($($output:ty),* $(,)?) => {$(
        impl Page for $output {
            fn next_marker(&self) -> Option<String> {
                self.marker().filter(|_| self.is_truncated()).map(str::to_string)
            }
        }
    )*};
}

pages_of!(
    aws_sdk_iam::operation::list_roles::ListRolesOutput,
    aws_sdk_iam::operation::list_instance_profiles::ListInstanceProfilesOutput,
    aws_sdk_iam::operation::list_role_policies::ListRolePoliciesOutput,
    aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesOutput,
    aws_sdk_iam::operation::list_policies::ListPoliciesOutput,
    aws_sdk_iam::operation::list_policy_versions::ListPolicyVersionsOutput,
    aws_sdk_iam::operation::list_entities_for_policy::ListEntitiesForPolicyOutput,
    aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput,
);

fn missing(operation: &'static str, what: &str) -> IamError {
    IamError {
        operation,
        kind: ErrorKind::Other,
        code: None,
        message: format!("the response holds no {what}"),
    }
}

impl Iam {
    /// The SDK's region (`${aws.region}`; IAM itself is global).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The requests made so far by this client and its clones.
    pub fn requests(&self) -> &RequestCounts {
        &self.requests
    }

    /// The account's pace, if requests are paced.
    pub fn pace(&self) -> Option<&Pace> {
        self.pace.as_deref()
    }

    /// `call` (an SDK `send()` not yet started), sent when the pace gives it a turn.
    async fn paced<F: std::future::Future>(&self, call: F) -> F::Output {
        if let Some(pace) = &self.pace {
            pace.turn().await;
        }
        call.await
    }

    /// Every page of a listing, each sent in its turn and handed to `each` as it arrives (no
    /// page is kept); `each` returns whether to read on (a search stops when it finds).
    async fn pages<P, E, F, Fut>(
        &self,
        operation: &'static str,
        fetch: F,
        mut each: impl FnMut(P) -> Result<bool, IamError>,
    ) -> Result<(), IamError>
    where
        P: Page,
        F: Fn(Option<String>) -> Fut,
        Fut: std::future::Future<
                Output = Result<
                    P,
                    aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
                >,
            >,
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut marker: Option<String> = None;
        loop {
            let page = match self.paced(fetch(marker.clone())).await {
                Ok(page) => page,
                Err(e) => return self.done::<(), E>(operation, Err(e)),
            };
            let next = page.next_marker();
            match (each(page)?, next) {
                // A marker handed back unchanged would page forever.
                (true, Some(next)) if marker.as_deref() == Some(next.as_str()) => {
                    return Err(missing(operation, "new marker for its next page"));
                }
                (true, Some(next)) => marker = Some(next),
                _ => return self.done::<(), E>(operation, Ok(())),
            }
        }
    }

    pub fn with_observer(mut self, observer: RequestObserver) -> Iam {
        self.observer = Some(observer);
        self
    }

    /// Counts the request, and turns an SDK error into an [`IamError`].
    fn done<T, E>(
        &self,
        operation: &'static str,
        result: Result<T, aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
    ) -> Result<T, IamError>
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Err(aws_sdk_iam::error::SdkError::TimeoutError(_)) = &result {
            // A timed-out attempt never reaches the counting interceptor: counted here.
            self.requests.record(operation, "timeout");
        }
        let result = result.map_err(|e| {
            let e = IamError::new(operation, e);
            match &self.assumed {
                Some(role) => e.assuming(role),
                None => e,
            }
        });
        if let Some(observe) = &self.observer {
            observe(operation, result.as_ref().err());
        }
        result
    }

    /// Every role (ListRoles leaves out tags and boundaries).
    pub async fn list_roles(&self) -> Result<Vec<aws_sdk_iam::types::Role>, IamError> {
        let mut roles = Vec::new();
        self.each_role_page(|page| roles.extend_from_slice(page))
            .await?;
        Ok(roles)
    }

    /// Every page of ListRoles, as it arrives.
    async fn each_role_page(
        &self,
        mut each: impl FnMut(&[aws_sdk_iam::types::Role]),
    ) -> Result<(), IamError> {
        self.pages(
            "ListRoles",
            |marker| {
                self.client
                    .list_roles()
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                each(page.roles());
                Ok(true)
            },
        )
        .await
    }

    /// How many roles and customer-managed policies the account holds (GetAccountSummary):
    /// what a bulk read of it costs. `None` for a count the answer lacks.
    pub async fn account_counts(&self) -> Result<AccountCounts, IamError> {
        let out = self.done(
            "GetAccountSummary",
            self.paced(self.client.get_account_summary().send()).await,
        )?;
        // `Roles` is not among the SDK's known keys: it parses as an unknown one.
        let count = |key: &str| {
            out.summary_map()
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == key))
                .and_then(|(_, v)| u64::try_from(*v).ok())
        };
        Ok(AccountCounts {
            roles: count("Roles"),
            policies: count("Policies"),
        })
    }

    /// The caller's account, which must be the one this client was made for, if any.
    pub async fn account(&self) -> Result<Account, IamError> {
        let account = self.caller_account().await?;
        match &self.account_id {
            Some(id) if **id != account.id => Err(IamError {
                operation: "GetCallerIdentity",
                kind: ErrorKind::AccessDenied,
                code: None,
                message: format!(
                    "the credentials reach account {}, not {id}: nothing is managed there",
                    account.id
                ),
            }),
            _ => Ok(account),
        }
    }

    /// The caller's account, from STS; failing that (an IAM-only endpoint, say), from IAM's
    /// GetUser, which answers for user credentials.
    async fn caller_account(&self) -> Result<Account, IamError> {
        let out = self.paced(self.sts.get_caller_identity().send()).await;
        let timed_out = matches!(&out, Err(aws_sdk_sts::error::SdkError::TimeoutError(_)));
        let sts_error = match self.done("GetCallerIdentity", out) {
            Ok(out) => {
                let arn = out.arn().unwrap_or_default();
                return Account::from_arn(arn)
                    .ok_or_else(|| missing("GetCallerIdentity", "account id"));
            }
            // A black-holed endpoint: asking IAM would only wait as long again. (STS refused
            // or unreachable at once, as on an IAM-only endpoint: IAM is asked.)
            Err(e) if timed_out || e.kind == ErrorKind::NoCredentials => return Err(e),
            Err(e) => e,
        };
        let out = self.paced(self.client.get_user().send()).await;
        match self.done("GetUser", out) {
            Ok(out) => out
                .user()
                .and_then(|u| Account::from_arn(u.arn()))
                .ok_or_else(|| missing("GetUser", "account id")),
            Err(_) => Err(sts_error),
        }
    }

    /// The role and everything the manifest format covers; `None` when it does not exist.
    pub async fn observe_role(&self, name: &str) -> Result<Option<ObservedRole>, IamError> {
        let out = self
            .paced(self.client.get_role().role_name(name).send())
            .await;
        let Some(out) = found(self.done("GetRole", out))? else {
            return Ok(None);
        };
        let role = out.role().ok_or_else(|| missing("GetRole", "role"))?;
        let mut names = Vec::new();
        self.pages(
            "ListRolePolicies",
            |marker| {
                self.client
                    .list_role_policies()
                    .role_name(name)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                names.extend(page.policy_names);
                Ok(true)
            },
        )
        .await?;
        let mut inline_policies = BTreeMap::new();
        for policy_name in names {
            let out = self
                .paced(
                    self.client
                        .get_role_policy()
                        .role_name(name)
                        .policy_name(&policy_name)
                        .send(),
                )
                .await;
            let out = self.done("GetRolePolicy", out)?;
            inline_policies.insert(
                policy_name,
                document("GetRolePolicy", Some(out.policy_document()))?,
            );
        }
        let mut managed_policies = BTreeSet::new();
        self.pages(
            "ListAttachedRolePolicies",
            |marker| {
                self.client
                    .list_attached_role_policies()
                    .role_name(name)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                managed_policies.extend(
                    page.attached_policies()
                        .iter()
                        .filter_map(|p| p.policy_arn().map(str::to_string)),
                );
                Ok(true)
            },
        )
        .await?;
        Ok(Some(ObservedRole {
            name: role.role_name().to_string(),
            arn: role.arn().to_string(),
            path: role.path().to_string(),
            description: role.description().unwrap_or_default().to_string(),
            max_session_duration: role.max_session_duration().unwrap_or(3600),
            permissions_boundary: role
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_string),
            assume_role_policy: document("GetRole", role.assume_role_policy_document())?,
            managed_policies,
            inline_policies,
            tags: tags_of(role.tags()),
        }))
    }

    /// The ARN of the customer-managed policy named `name` (ignoring case, as IAM does),
    /// wherever its path puts it.
    pub async fn find_policy_arn(&self, name: &str) -> Result<Option<String>, IamError> {
        let mut found = None;
        self.pages(
            "ListPolicies",
            |marker| {
                self.client
                    .list_policies()
                    .scope(aws_sdk_iam::types::PolicyScopeType::Local)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                found = found.take().or_else(|| {
                    page.policies()
                        .iter()
                        .filter_map(|p| p.arn())
                        .find(|arn| {
                            crate::arn::name_and_path(arn)
                                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
                        })
                        .map(str::to_string)
                });
                // Found: no need to read further pages.
                Ok(found.is_none())
            },
        )
        .await?;
        Ok(found)
    }

    /// The policy, its default document and its versions; `None` when it does not exist.
    pub async fn observe_policy(&self, arn: &str) -> Result<Option<ObservedPolicy>, IamError> {
        let out = self
            .paced(self.client.get_policy().policy_arn(arn).send())
            .await;
        let Some(out) = found(self.done("GetPolicy", out))? else {
            return Ok(None);
        };
        let policy = out.policy().ok_or_else(|| missing("GetPolicy", "policy"))?;
        let default_id = policy.default_version_id().unwrap_or("v1");
        let version = self
            .paced(
                self.client
                    .get_policy_version()
                    .policy_arn(arn)
                    .version_id(default_id)
                    .send(),
            )
            .await;
        let version = self.done("GetPolicyVersion", version)?;
        let doc_text = version.policy_version().and_then(|v| v.document());
        let mut versions = Vec::new();
        self.pages(
            "ListPolicyVersions",
            |marker| {
                self.client
                    .list_policy_versions()
                    .policy_arn(arn)
                    .max_items(PAGE_SIZE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                versions.extend(page.versions().iter().map(|v| PolicyVersion {
                    id: v.version_id().unwrap_or_default().to_string(),
                    is_default: v.is_default_version(),
                    created: v.create_date().map_or(0, |d| d.secs()),
                }));
                Ok(true)
            },
        )
        .await?;
        Ok(Some(ObservedPolicy {
            name: policy.policy_name().unwrap_or_default().to_string(),
            arn: arn.to_string(),
            path: policy.path().unwrap_or("/").to_string(),
            description: policy.description().unwrap_or_default().to_string(),
            document: document("GetPolicyVersion", doc_text)?,
            versions,
            tags: tags_of(policy.tags()),
        }))
    }
}
