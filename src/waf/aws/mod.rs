//! [`WafApi`] over the AWS SDK.
//!
//! Credentials and region come from the standard AWS chain (environment, profiles, SSO, instance
//! roles); `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_WAFV2` are honoured by `aws-config`, which is how
//! the tests reach moto. Calls are paced and retried by `call`; the SDK's types are converted by
//! `convert`. The account is asked of STS (`GetCallerIdentity`), which needs no permission.

mod call;
mod convert;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_wafv2 as sdk;

pub use call::CallPolicy;
use call::{Caller, all_pages};
use convert::{content_type_from_sdk, content_type_to_sdk, sdk_rule, shape_of, statement_wcu};

use super::{
    IpSet, IpSetSummary, LiveRule, NewIpSet, WafApi, WafError, WafErrorKind, WebAcl, WebAclEdit,
    WebAclSummary,
};
use crate::config::Config;
use crate::model::acl::Scope;
use crate::model::waf::{IpVersion, ResponseBody};
use crate::sdk_error::{self, EndpointRecorder};

pub struct AwsWaf {
    client: sdk::Client,
    sts: aws_sdk_sts::Client,
    scope: Scope,
    region: String,
    caller: Caller,
}

impl AwsWaf {
    /// A client for the configuration's scope and region, from the standard AWS chain.
    pub async fn from_config(config: &Config) -> Result<AwsWaf, WafError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = config.effective_region() {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        AwsWaf::new(
            &loader.load().await,
            config.scope,
            CallPolicy::from_config(config),
        )
        .map_err(|e| WafError {
            resource: config.path.display().to_string(),
            ..e
        })
    }

    /// Clients for WAFv2 and STS from an SDK configuration (tests point one at moto).
    pub fn new(
        sdk_config: &aws_config::SdkConfig,
        scope: Scope,
        policy: CallPolicy,
    ) -> Result<AwsWaf, WafError> {
        let region = sdk_config.region().map(ToString::to_string).ok_or_else(|| WafError {
            operation: "configure",
            resource: scope.as_str().to_owned(),
            kind: WafErrorKind::Other {
                code: "NoRegion".into(),
                message: "no AWS region: set `region` in the config, or AWS_REGION / a profile region".into(),
            },
        })?;
        let endpoint = EndpointRecorder::default();
        let client = sdk::Client::from_conf(
            sdk::config::Builder::from(sdk_config)
                .interceptor(endpoint.clone())
                .build(),
        );
        Ok(AwsWaf {
            client,
            sts: aws_sdk_sts::Client::from_conf(
                aws_sdk_sts::config::Builder::from(sdk_config)
                    .interceptor(endpoint.clone())
                    .build(),
            ),
            scope,
            region,
            caller: Caller::new(policy, endpoint),
        })
    }

    fn sdk_scope(&self) -> sdk::types::Scope {
        match self.scope {
            Scope::Regional => sdk::types::Scope::Regional,
            Scope::Cloudfront => sdk::types::Scope::Cloudfront,
        }
    }
}

fn missing(operation: &'static str, resource: &str, what: &str) -> WafError {
    WafError {
        operation,
        resource: resource.to_owned(),
        kind: WafErrorKind::Other {
            code: "InvalidResponse".into(),
            message: format!("the response has no {what}"),
        },
    }
}

fn build_error(operation: &'static str, resource: &str, err: impl std::fmt::Display) -> WafError {
    WafError {
        operation,
        resource: resource.to_owned(),
        kind: WafErrorKind::Other {
            code: "BuildRequest".into(),
            message: err.to_string(),
        },
    }
}

fn summary_of(
    operation: &'static str,
    resource: &str,
    s: &sdk::types::IpSetSummary,
) -> Result<IpSetSummary, WafError> {
    let field = |v: Option<&str>, what: &str| {
        v.map(ToOwned::to_owned)
            .ok_or_else(|| missing(operation, resource, what))
    };
    Ok(IpSetSummary {
        name: field(s.name(), "IP set name")?,
        id: field(s.id(), "IP set id")?,
        arn: field(s.arn(), "IP set ARN")?,
        lock_token: field(s.lock_token(), "lock token")?,
    })
}

impl WafApi for AwsWaf {
    fn scope(&self) -> Scope {
        self.scope
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn account(&self) -> Result<Option<String>, WafError> {
        const OP: &str = "GetCallerIdentity";
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| WafError {
                operation: OP,
                resource: "STS".into(),
                kind: WafErrorKind::Unexpected {
                    message: sdk_error::describe(&e, "STS", &self.caller.endpoint.endpoint()),
                },
            })?;
        out.account
            .map(Some)
            .ok_or_else(|| missing(OP, "STS", "account"))
    }

    async fn list_ip_sets(&self) -> Result<Vec<IpSetSummary>, WafError> {
        const OP: &str = "ListIPSets";
        let scope = self.scope.as_str();
        all_pages(|marker| async move {
            let page = self
                .caller
                .call(OP, scope, false, || {
                    self.client
                        .list_ip_sets()
                        .scope(self.sdk_scope())
                        .limit(100)
                        .set_next_marker(marker.clone())
                        .send()
                })
                .await?;
            let items = page
                .ip_sets()
                .iter()
                .map(|s| summary_of(OP, scope, s))
                .collect::<Result<_, _>>()?;
            Ok((items, page.next_marker))
        })
        .await
    }

    async fn get_ip_set(&self, name: &str, id: &str) -> Result<IpSet, WafError> {
        const OP: &str = "GetIPSet";
        let out = self
            .caller
            .call(OP, name, false, || {
                self.client
                    .get_ip_set()
                    .scope(self.sdk_scope())
                    .name(name)
                    .id(id)
                    .send()
            })
            .await?;
        let set = out.ip_set().ok_or_else(|| missing(OP, name, "IP set"))?;
        let version = match set.ip_address_version() {
            sdk::types::IpAddressVersion::Ipv4 => IpVersion::V4,
            sdk::types::IpAddressVersion::Ipv6 => IpVersion::V6,
            other => {
                return Err(WafError {
                    operation: OP,
                    resource: name.to_owned(),
                    kind: WafErrorKind::Other {
                        code: "InvalidResponse".into(),
                        message: format!("unknown IP address version `{}`", other.as_str()),
                    },
                });
            }
        };
        Ok(IpSet {
            name: set.name().to_owned(),
            id: set.id().to_owned(),
            arn: set.arn().to_owned(),
            description: set.description().map(ToOwned::to_owned),
            version,
            addresses: set.addresses().to_vec(),
            lock_token: out
                .lock_token()
                .ok_or_else(|| missing(OP, name, "lock token"))?
                .to_owned(),
        })
    }

    async fn create_ip_set(&self, set: &NewIpSet) -> Result<IpSetSummary, WafError> {
        const OP: &str = "CreateIPSet";
        let version = match set.version {
            IpVersion::V4 => sdk::types::IpAddressVersion::Ipv4,
            IpVersion::V6 => sdk::types::IpAddressVersion::Ipv6,
        };
        let tags = set
            .tags
            .iter()
            .map(|(k, v)| sdk::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(OP, &set.name, e))?;
        let out = self
            .caller
            .call(OP, &set.name, true, || {
                self.client
                    .create_ip_set()
                    .scope(self.sdk_scope())
                    .name(&set.name)
                    .description(&set.description)
                    .ip_address_version(version.clone())
                    .set_addresses(Some(set.addresses.clone()))
                    .set_tags(Some(tags.clone()))
                    .send()
            })
            .await?;
        let summary = out
            .summary()
            .ok_or_else(|| missing(OP, &set.name, "summary"))?;
        summary_of(OP, &set.name, summary)
    }

    async fn update_ip_set(
        &self,
        summary: &IpSetSummary,
        description: &str,
        addresses: &[String],
    ) -> Result<String, WafError> {
        const OP: &str = "UpdateIPSet";
        let out = self
            .caller
            .call(OP, &summary.name, true, || {
                self.client
                    .update_ip_set()
                    .scope(self.sdk_scope())
                    .name(&summary.name)
                    .id(&summary.id)
                    .description(description)
                    .set_addresses(Some(addresses.to_vec()))
                    .lock_token(&summary.lock_token)
                    .send()
            })
            .await?;
        out.next_lock_token()
            .map(ToOwned::to_owned)
            .ok_or_else(|| missing(OP, &summary.name, "next lock token"))
    }

    async fn delete_ip_set(&self, summary: &IpSetSummary) -> Result<(), WafError> {
        self.caller
            .call("DeleteIPSet", &summary.name, true, || {
                self.client
                    .delete_ip_set()
                    .scope(self.sdk_scope())
                    .name(&summary.name)
                    .id(&summary.id)
                    .lock_token(&summary.lock_token)
                    .send()
            })
            .await
            .map(drop)
    }

    async fn list_web_acls(&self) -> Result<Vec<WebAclSummary>, WafError> {
        const OP: &str = "ListWebACLs";
        let scope = self.scope.as_str();
        all_pages(|marker| async move {
            let page = self
                .caller
                .call(OP, scope, false, || {
                    self.client
                        .list_web_acls()
                        .scope(self.sdk_scope())
                        .limit(100)
                        .set_next_marker(marker.clone())
                        .send()
                })
                .await?;
            let field = |v: Option<&str>, what: &str| {
                v.map(ToOwned::to_owned)
                    .ok_or_else(|| missing(OP, scope, what))
            };
            let items = page
                .web_acls()
                .iter()
                .map(|s| {
                    Ok(WebAclSummary {
                        name: field(s.name(), "web ACL name")?,
                        id: field(s.id(), "web ACL id")?,
                        arn: field(s.arn(), "web ACL ARN")?,
                        lock_token: field(s.lock_token(), "lock token")?,
                    })
                })
                .collect::<Result<_, WafError>>()?;
            Ok((items, page.next_marker))
        })
        .await
    }

    async fn get_web_acl(&self, name: &str, id: &str) -> Result<WebAcl, WafError> {
        let (acl, lock_token) = self.get_sdk_web_acl(name, id).await?;
        let mut custom_response_bodies = BTreeMap::new();
        for (key, body) in acl.custom_response_bodies().into_iter().flatten() {
            if let Some(content_type) = content_type_from_sdk(body.content_type()) {
                custom_response_bodies.insert(
                    key.clone(),
                    ResponseBody {
                        content_type,
                        content: body.content().to_owned(),
                    },
                );
            }
        }
        Ok(WebAcl {
            name: acl.name().to_owned(),
            id: acl.id().to_owned(),
            arn: acl.arn().to_owned(),
            lock_token,
            rules: acl
                .rules()
                .iter()
                .map(|r| LiveRule {
                    name: r.name().to_owned(),
                    priority: r.priority(),
                    shape: shape_of(r),
                    wcu: r.statement().and_then(statement_wcu),
                })
                .collect(),
            custom_response_bodies,
            capacity: u64::try_from(acl.capacity()).ok(),
        })
    }

    async fn update_web_acl(
        &self,
        summary: &WebAclSummary,
        edit: &WebAclEdit,
    ) -> Result<String, WafError> {
        const OP: &str = "UpdateWebACL";
        let name = summary.name.as_str();
        // UpdateWebACL replaces the whole specification, so start from the web ACL as AWS has it and
        // change only waftune's rules and bodies. If it is no longer at the caller's lock token, its
        // other rules may differ from what was planned: refuse as AWS would, without writing.
        let (acl, current_token) = self.get_sdk_web_acl(name, &summary.id).await?;
        if current_token != summary.lock_token {
            return Err(WafError {
                operation: OP,
                resource: name.to_owned(),
                kind: WafErrorKind::Stale,
            });
        }
        let mut rules: Vec<sdk::types::Rule> = acl.rules().to_vec();
        rules.retain(|r| !edit.remove.iter().any(|n| n == r.name()));
        for put in &edit.rules {
            let rule = sdk_rule(put).map_err(|e| build_error(OP, name, e))?;
            match rules.iter_mut().find(|r| r.name() == put.name) {
                Some(existing) => *existing = rule,
                None => rules.push(rule),
            }
        }
        let mut bodies: HashMap<String, sdk::types::CustomResponseBody> =
            acl.custom_response_bodies().cloned().unwrap_or_default();
        for (key, body) in &edit.bodies {
            let sdk_body = sdk::types::CustomResponseBody::builder()
                .content_type(content_type_to_sdk(body.content_type))
                .content(&body.content)
                .build()
                .map_err(|e| build_error(OP, name, e))?;
            bodies.insert(key.clone(), sdk_body);
        }
        let out = self
            .caller
            .call(OP, name, true, || {
                self.client
                    .update_web_acl()
                    .scope(self.sdk_scope())
                    .name(name)
                    .id(&summary.id)
                    .lock_token(&summary.lock_token)
                    .set_default_action(acl.default_action().cloned())
                    .set_description(acl.description().map(ToOwned::to_owned))
                    .set_rules(Some(rules.clone()))
                    .set_visibility_config(acl.visibility_config().cloned())
                    .set_data_protection_config(acl.data_protection_config().cloned())
                    .set_custom_response_bodies((!bodies.is_empty()).then(|| bodies.clone()))
                    .set_captcha_config(acl.captcha_config().cloned())
                    .set_challenge_config(acl.challenge_config().cloned())
                    .set_token_domains(acl.token_domains.clone())
                    .set_association_config(acl.association_config().cloned())
                    .set_on_source_d_do_s_protection_config(
                        acl.on_source_d_do_s_protection_config().cloned(),
                    )
                    .set_application_config(acl.application_config().cloned())
                    .set_monetization_config(acl.monetization_config().cloned())
                    .send()
            })
            .await?;
        out.next_lock_token()
            .map(ToOwned::to_owned)
            .ok_or_else(|| missing(OP, name, "next lock token"))
    }
}

impl AwsWaf {
    async fn get_sdk_web_acl(
        &self,
        name: &str,
        id: &str,
    ) -> Result<(sdk::types::WebAcl, String), WafError> {
        const OP: &str = "GetWebACL";
        let out = self
            .caller
            .call(OP, name, false, || {
                self.client
                    .get_web_acl()
                    .scope(self.sdk_scope())
                    .name(name)
                    .id(id)
                    .send()
            })
            .await?;
        let lock_token = out
            .lock_token()
            .ok_or_else(|| missing(OP, name, "lock token"))?
            .to_owned();
        let acl = out.web_acl.ok_or_else(|| missing(OP, name, "web ACL"))?;
        Ok((acl, lock_token))
    }
}
