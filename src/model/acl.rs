//! The web ACL's scope and the content types of custom response bodies.

use serde::{Deserialize, Serialize};

/// Which WAF: regional (ALB, API Gateway, AppSync, ...) or CloudFront.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    Regional,
    Cloudfront,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Regional => "REGIONAL",
            Scope::Cloudfront => "CLOUDFRONT",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContentType {
    TextPlain,
    TextHtml,
    ApplicationJson,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::TextPlain => "TEXT_PLAIN",
            ContentType::TextHtml => "TEXT_HTML",
            ContentType::ApplicationJson => "APPLICATION_JSON",
        }
    }
}
