//! An in-memory [`WafApi`] for unit tests: lock tokens, duplicate names and references behave as
//! in WAF, and one operation can be made to fail to test partial applies.

use std::sync::Mutex;

use super::{
    IpSet, IpSetSummary, LiveRule, NewIpSet, RuleShape, WafApi, WafError, WafErrorKind, WebAcl,
    WebAclEdit, WebAclSummary,
};
use crate::model::acl::Scope;

pub const REGION: &str = "ap-northeast-1";
pub const ACCOUNT: &str = "123456789012";

#[derive(Default)]
pub struct State {
    pub sets: Vec<IpSet>,
    pub acls: Vec<WebAcl>,
    pub counter: u64,
    /// (operation, resource name) whose next call fails with an internal error.
    pub fail: Option<(&'static str, String)>,
    pub writes: Vec<String>,
}

pub struct FakeWaf {
    pub state: Mutex<State>,
}

fn err(operation: &'static str, resource: &str, kind: WafErrorKind) -> WafError {
    WafError {
        operation,
        resource: resource.to_owned(),
        kind,
    }
}

impl State {
    fn token(&mut self) -> String {
        self.counter += 1;
        format!("token-{}", self.counter)
    }

    fn check_fail(&mut self, operation: &'static str, name: &str) -> Result<(), WafError> {
        if self
            .fail
            .as_ref()
            .is_some_and(|(op, n)| *op == operation && n == name)
        {
            self.fail = None;
            return Err(err(
                operation,
                name,
                WafErrorKind::Other {
                    code: "WAFInternalErrorException".into(),
                    message: "injected failure".into(),
                },
            ));
        }
        self.writes.push(format!("{operation} {name}"));
        Ok(())
    }
}

impl FakeWaf {
    /// A REGIONAL account with one web ACL `shop` holding an unmanaged rule at priority 1, and an
    /// IP set of another team.
    pub fn new() -> FakeWaf {
        let mut state = State::default();
        state.sets.push(IpSet {
            name: "other-team".into(),
            id: "id-other".into(),
            arn: format!("arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/ipset/other-team/id-other"),
            description: Some("not ours".into()),
            version: super::IpVersion::V4,
            addresses: vec!["203.0.113.0/24".into()],
            lock_token: "token-other".into(),
        });
        state.acls.push(WebAcl {
            name: "shop".into(),
            id: "id-shop".into(),
            arn: format!("arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/shop/id-shop"),
            lock_token: "token-acl".into(),
            rules: vec![LiveRule {
                name: "rate-limit".into(),
                priority: 1,
                shape: RuleShape::Other {
                    summary: "Rule { name: \"rate-limit\", .. }".into(),
                },
                wcu: Some(2),
            }],
            custom_response_bodies: Default::default(),
            capacity: Some(2),
        });
        FakeWaf {
            state: Mutex::new(state),
        }
    }

    pub fn set(&self, name: &str) -> Option<IpSet> {
        self.state
            .lock()
            .unwrap()
            .sets
            .iter()
            .find(|s| s.name == name)
            .cloned()
    }

    pub fn acl(&self) -> WebAcl {
        self.state.lock().unwrap().acls[0].clone()
    }

    /// Someone else edits a set (as in the console): new addresses, new lock token.
    pub fn edit_set(&self, name: &str, addresses: &[&str]) {
        let mut s = self.state.lock().unwrap();
        let token = s.token();
        let set = s.sets.iter_mut().find(|x| x.name == name).unwrap();
        set.addresses = addresses.iter().map(|a| a.to_string()).collect();
        set.lock_token = token;
    }
}

impl WafApi for FakeWaf {
    fn scope(&self) -> Scope {
        Scope::Regional
    }

    fn region(&self) -> &str {
        REGION
    }

    async fn account(&self) -> Result<Option<String>, WafError> {
        Ok(Some(ACCOUNT.to_owned()))
    }

    async fn list_ip_sets(&self) -> Result<Vec<IpSetSummary>, WafError> {
        let s = self.state.lock().unwrap();
        Ok(s.sets
            .iter()
            .map(|x| IpSetSummary {
                name: x.name.clone(),
                id: x.id.clone(),
                arn: x.arn.clone(),
                lock_token: x.lock_token.clone(),
            })
            .collect())
    }

    async fn get_ip_set(&self, name: &str, id: &str) -> Result<IpSet, WafError> {
        let s = self.state.lock().unwrap();
        s.sets
            .iter()
            .find(|x| x.id == id)
            .cloned()
            .ok_or_else(|| err("GetIPSet", name, WafErrorKind::NotFound))
    }

    async fn create_ip_set(&self, set: &NewIpSet) -> Result<IpSetSummary, WafError> {
        let mut s = self.state.lock().unwrap();
        s.check_fail("CreateIPSet", &set.name)?;
        if s.sets.iter().any(|x| x.name == set.name) {
            return Err(err("CreateIPSet", &set.name, WafErrorKind::Duplicate));
        }
        let token = s.token();
        let id = format!("id-{}", set.name);
        let created = IpSet {
            name: set.name.clone(),
            arn: format!(
                "arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/ipset/{}/{id}",
                set.name
            ),
            id,
            description: Some(set.description.clone()),
            version: set.version,
            addresses: set.addresses.clone(),
            lock_token: token,
        };
        let summary = IpSetSummary {
            name: created.name.clone(),
            id: created.id.clone(),
            arn: created.arn.clone(),
            lock_token: created.lock_token.clone(),
        };
        s.sets.push(created);
        Ok(summary)
    }

    async fn update_ip_set(
        &self,
        summary: &IpSetSummary,
        description: &str,
        addresses: &[String],
    ) -> Result<String, WafError> {
        let mut s = self.state.lock().unwrap();
        s.check_fail("UpdateIPSet", &summary.name)?;
        let token = s.token();
        let set = s
            .sets
            .iter_mut()
            .find(|x| x.id == summary.id)
            .ok_or_else(|| err("UpdateIPSet", &summary.name, WafErrorKind::NotFound))?;
        if set.lock_token != summary.lock_token {
            return Err(err("UpdateIPSet", &summary.name, WafErrorKind::Stale));
        }
        set.description = Some(description.to_owned());
        set.addresses = addresses.to_vec();
        set.lock_token = token.clone();
        Ok(token)
    }

    async fn delete_ip_set(&self, summary: &IpSetSummary) -> Result<(), WafError> {
        let mut s = self.state.lock().unwrap();
        s.check_fail("DeleteIPSet", &summary.name)?;
        let Some(i) = s.sets.iter().position(|x| x.id == summary.id) else {
            return Err(err("DeleteIPSet", &summary.name, WafErrorKind::NotFound));
        };
        if s.sets[i].lock_token != summary.lock_token {
            return Err(err("DeleteIPSet", &summary.name, WafErrorKind::Stale));
        }
        let arn = s.sets[i].arn.clone();
        let referenced = s
            .acls
            .iter()
            .flat_map(|a| &a.rules)
            .any(|r| matches!(&r.shape, RuleShape::IpSetMatch(m) if m.set_arns.contains(&arn)));
        if referenced {
            return Err(err(
                "DeleteIPSet",
                &summary.name,
                WafErrorKind::StillReferenced,
            ));
        }
        s.sets.remove(i);
        Ok(())
    }

    async fn list_web_acls(&self) -> Result<Vec<WebAclSummary>, WafError> {
        let s = self.state.lock().unwrap();
        Ok(s.acls
            .iter()
            .map(|a| WebAclSummary {
                name: a.name.clone(),
                id: a.id.clone(),
                arn: a.arn.clone(),
                lock_token: a.lock_token.clone(),
            })
            .collect())
    }

    async fn get_web_acl(&self, name: &str, id: &str) -> Result<WebAcl, WafError> {
        let s = self.state.lock().unwrap();
        s.acls
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| err("GetWebACL", name, WafErrorKind::NotFound))
    }

    async fn update_web_acl(
        &self,
        summary: &WebAclSummary,
        edit: &WebAclEdit,
    ) -> Result<String, WafError> {
        let mut s = self.state.lock().unwrap();
        s.check_fail("UpdateWebACL", &summary.name)?;
        let token = s.token();
        let acl = s
            .acls
            .iter_mut()
            .find(|a| a.id == summary.id)
            .ok_or_else(|| err("UpdateWebACL", &summary.name, WafErrorKind::NotFound))?;
        if acl.lock_token != summary.lock_token {
            return Err(err("UpdateWebACL", &summary.name, WafErrorKind::Stale));
        }
        acl.rules.retain(|r| !edit.remove.contains(&r.name));
        for put in &edit.rules {
            let rule = LiveRule {
                name: put.name.clone(),
                priority: put.priority,
                shape: put.rule.shape(),
                wcu: Some(put.rule.wcu()),
            };
            match acl.rules.iter_mut().find(|r| r.name == put.name) {
                Some(existing) => *existing = rule,
                None => acl.rules.push(rule),
            }
        }
        for (k, b) in &edit.bodies {
            acl.custom_response_bodies.insert(k.clone(), b.clone());
        }
        acl.lock_token = token.clone();
        Ok(token)
    }
}
