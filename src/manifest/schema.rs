//! A JSON Schema (draft-07) for the manifest kinds, so that editors validate and complete
//! manifests as they would a Kubernetes CRD. `iam-warden schema` prints it.
//!
//! Written out by hand, with a description per field, and kept in step with the decoder by a
//! test (every field the decoder accepts, and no other). The schema is a first line of
//! defence for editors: `validate` stays the judge. Where the decoder reads any scalar as a
//! string (tag and annotation values, `tags: {cost: 1234}`), the schema accepts any scalar
//! there too; field values may hold `${var.NAME}` and `${aws.NAME}`, so names, paths and ARNs
//! are not checked against IAM's patterns here.

use serde_json::{Value, json};

use super::{
    ACCOUNTS_ANNOTATION, ADOPT_ANNOTATION, API_VERSION, MODE_ANNOTATION, PRUNE_ANNOTATION,
};

/// The schema, as JSON.
pub fn json_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "iam-warden manifest",
        "description": "One YAML document: a Role, a customer-managed Policy, an InstanceProfile or an OpenIDConnectProvider that iam-warden keeps equal to this manifest.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": false,
        "properties": {
            "apiVersion": {"const": API_VERSION},
            "kind": {"enum": ["Role", "Policy", "InstanceProfile", "OpenIDConnectProvider"]},
            "metadata": {"$ref": "#/definitions/metadata"},
            "spec": {"type": "object"}
        },
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "Role"}}, "required": ["kind"]},
                "then": {"properties": {"spec": {"$ref": "#/definitions/roleSpec"}}}
            },
            {
                "if": {"properties": {"kind": {"const": "Policy"}}, "required": ["kind"]},
                "then": {"properties": {"spec": {"$ref": "#/definitions/policySpec"}}}
            },
            {
                "if": {"properties": {"kind": {"const": "InstanceProfile"}}, "required": ["kind"]},
                "then": {"properties": {"spec": {"$ref": "#/definitions/instanceProfileSpec"}}}
            },
            {
                "if": {"properties": {"kind": {"const": "OpenIDConnectProvider"}}, "required": ["kind"]},
                "then": {"properties": {"spec": {"$ref": "#/definitions/oidcProviderSpec"}}}
            }
        ],
        "definitions": {
            "scalar": {"type": ["string", "number", "boolean", "null"]},
            "metadata": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The IAM name (roles: at most 64 of [A-Za-z0-9+=,.@_-]; policies: at most 128). Case-insensitive to IAM."
                    },
                    "annotations": {
                        "type": "object",
                        "description": "String values. iam-warden/… keys are iam-warden's own: only those listed here.",
                        "properties": {
                            ADOPT_ANNOTATION: {
                                "enum": ["true", "false", true, false],
                                "description": "Take over an existing resource that no owner tag claims."
                            },
                            PRUNE_ANNOTATION: {
                                "enum": ["never", "allowed"],
                                "description": "never: --prune never deletes this resource."
                            },
                            MODE_ANNOTATION: {
                                "enum": ["observe", "enforce"],
                                "description": "observe: report drift on this resource, change nothing."
                            },
                            ACCOUNTS_ANNOTATION: {
                                "type": "string",
                                "pattern": "^\\s*!?\\s*[A-Za-z0-9_*?-]+\\s*(,\\s*!?\\s*[A-Za-z0-9_*?-]+\\s*)*$",
                                "description": "With --accounts: the accounts this manifest applies to, by name or id (`*`, `?` wildcards; `!` excludes). Default: every account."
                            }
                        },
                        "propertyNames": {
                            "anyOf": [
                                {"not": {"pattern": "^[iI][aA][mM]-[wW][aA][rR][dD][eE][nN]/"}},
                                {"enum": [ADOPT_ANNOTATION, PRUNE_ANNOTATION, MODE_ANNOTATION, ACCOUNTS_ANNOTATION]}
                            ]
                        },
                        "additionalProperties": {"$ref": "#/definitions/scalar"}
                    }
                }
            },
            "path": {
                "type": "string",
                "description": "IAM path, /…/ (default /). IAM cannot change it in place.",
                "pattern": "^/(.*/)?$"
            },
            "description": {
                "type": "string",
                "maxLength": 1000
            },
            "tags": {
                "type": "object",
                "description": "The exact set of tags (aws: keys and --ignore-tag-prefix keys excepted). Keys ignore case.",
                "additionalProperties": {"$ref": "#/definitions/scalar"}
            },
            "policyRef": {
                "description": "A managed policy: its ARN, or {ref: NAME} naming a Policy manifest.",
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "required": ["ref"],
                        "additionalProperties": false,
                        "properties": {"ref": {"type": "string", "minLength": 1}}
                    }
                ]
            },
            "stringOrList": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}}
                ]
            },
            "statement": {
                "type": "object",
                "required": ["Effect"],
                "additionalProperties": false,
                "properties": {
                    "Sid": {"type": "string"},
                    "Effect": {"enum": ["Allow", "Deny"]},
                    "Principal": {"oneOf": [{"const": "*"}, {"type": "object"}]},
                    "NotPrincipal": {"oneOf": [{"const": "*"}, {"type": "object"}]},
                    "Action": {"$ref": "#/definitions/stringOrList"},
                    "NotAction": {"$ref": "#/definitions/stringOrList"},
                    "Resource": {"$ref": "#/definitions/stringOrList"},
                    "NotResource": {"$ref": "#/definitions/stringOrList"},
                    "Condition": {"type": "object"}
                }
            },
            "policyDocument": {
                "description": "An IAM policy document with IAM's own keys: a mapping, or a string holding JSON.",
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "object",
                        "required": ["Version", "Statement"],
                        "additionalProperties": false,
                        "properties": {
                            "Version": {"enum": ["2012-10-17", "2008-10-17"]},
                            "Id": {"type": "string"},
                            "Statement": {
                                "oneOf": [
                                    {"$ref": "#/definitions/statement"},
                                    {"type": "array", "items": {"$ref": "#/definitions/statement"}}
                                ]
                            }
                        }
                    }
                ]
            },
            "roleSpec": {
                "type": "object",
                "required": ["assumeRolePolicy"],
                "additionalProperties": false,
                "properties": {
                    "path": {"$ref": "#/definitions/path"},
                    "description": {"$ref": "#/definitions/description"},
                    "maxSessionDuration": {
                        "description": "Seconds, 3600..43200 (default 3600).",
                        "anyOf": [
                            {"type": "integer", "minimum": 3600, "maximum": 43200},
                            {"type": "string", "pattern": "^([0-9]+|.*\\$\\{var\\.[^}]+\\}.*)$"}
                        ]
                    },
                    "permissionsBoundary": {"$ref": "#/definitions/policyRef"},
                    "assumeRolePolicy": {
                        "$ref": "#/definitions/policyDocument",
                        "description": "The trust policy: who may assume the role."
                    },
                    "managedPolicies": {
                        "type": "array",
                        "description": "The exact set of attached managed policies.",
                        "items": {"$ref": "#/definitions/policyRef"}
                    },
                    "inlinePolicies": {
                        "type": "object",
                        "description": "The exact set of inline policies: name -> document.",
                        "additionalProperties": {"$ref": "#/definitions/policyDocument"}
                    },
                    "tags": {"$ref": "#/definitions/tags"}
                }
            },
            "policySpec": {
                "type": "object",
                "required": ["document"],
                "additionalProperties": false,
                "properties": {
                    "path": {"$ref": "#/definitions/path"},
                    "description": {
                        "$ref": "#/definitions/description",
                        "description": "IAM cannot change a policy's description in place."
                    },
                    "document": {"$ref": "#/definitions/policyDocument"},
                    "tags": {"$ref": "#/definitions/tags"}
                }
            },
            "instanceProfileSpec": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "path": {"$ref": "#/definitions/path"},
                    "role": {
                        "description": "The one role it holds (IAM allows one): a role's name, or {ref: NAME} naming a Role manifest. Absent: none.",
                        "oneOf": [
                            {"type": "string", "minLength": 1},
                            {
                                "type": "object",
                                "required": ["ref"],
                                "additionalProperties": false,
                                "properties": {"ref": {"type": "string", "minLength": 1}}
                            }
                        ]
                    },
                    "tags": {"$ref": "#/definitions/tags"}
                }
            },
            "oidcProviderSpec": {
                "type": "object",
                "required": ["url"],
                "additionalProperties": false,
                "properties": {
                    "url": {
                        "type": "string",
                        "description": "The issuer, https://…; IAM identifies the provider by it (the ARN is built from it) and cannot change it.",
                        "pattern": "^(https://[^?#]+[^/?#]|.*\\$\\{var\\.[^}]+\\}.*)$"
                    },
                    "clientIDs": {
                        "type": "array",
                        "description": "The exact set of audiences (at most 100), e.g. sts.amazonaws.com.",
                        "maxItems": 100,
                        "uniqueItems": true,
                        "items": {"type": "string", "minLength": 1, "maxLength": 255}
                    },
                    "thumbprints": {
                        "type": "array",
                        "description": "Server certificate thumbprints (40 hex digits, at most 5). Absent: whatever IAM holds is fine.",
                        "maxItems": 5,
                        "uniqueItems": true,
                        "items": {"type": "string"}
                    },
                    "tags": {"$ref": "#/definitions/tags"}
                }
            }
        }
    })
}

/// The schema as `iam-warden schema` prints it (and `deploy/schema/` holds): pretty, one
/// trailing newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema of the accounts file (`--accounts FILE`).
pub fn accounts_json_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "iam-warden accounts file",
        "description": "The accounts one iam-warden process manages (--accounts FILE).",
        "type": "object",
        "anyOf": [{"required": ["accounts"]}, {"required": ["organization"]}],
        "additionalProperties": false,
        "properties": {
            "accounts": {
                "type": "array",
                "items": {"$ref": "#/definitions/account"}
            },
            "organization": {"$ref": "#/definitions/organization"}
        },
        "definitions": {
            "organization": {
                "type": "object",
                "required": ["roleName"],
                "additionalProperties": false,
                "description": "The active member accounts of the caller's AWS Organization join the listed accounts (which win by id); listed with the process's own credentials.",
                "properties": {
                    "roleName": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9+=,.@_-]+(/[A-Za-z0-9+=,.@_-]+)*$",
                        "description": "NAME or PATH/NAME of the role assumed in each member account."
                    },
                    "include": {
                        "type": "array", "items": {"type": "string"},
                        "description": "Member account names or ids (`*`, `?` wildcards); default every member. Names are the organization's, other characters than [A-Za-z0-9_-] made `-`."
                    },
                    "exclude": {
                        "type": "array", "items": {"type": "string"},
                        "description": "Member account names or ids left out (beat include)."
                    },
                    "organizationalUnits": {
                        "type": "array", "items": {"type": "string", "pattern": "^(ou|r)-[a-z0-9-]+$"},
                        "description": "Only the members under these OUs or roots, recursively."
                    },
                    "refreshEvery": {
                        "type": ["integer", "string"],
                        "description": "The organization is listed again every this many resyncs (default 5): new members start without a restart."
                    },
                    "externalId": {"$ref": "#/definitions/account/properties/externalId"},
                    "sessionName": {"$ref": "#/definitions/account/properties/sessionName"},
                    "sessionDuration": {"$ref": "#/definitions/account/properties/sessionDuration"},
                    "values": {"$ref": "#/definitions/account/properties/values"},
                    "valuesFiles": {"$ref": "#/definitions/account/properties/valuesFiles"},
                    "maxRequestsPerSecond": {"$ref": "#/definitions/account/properties/maxRequestsPerSecond"}
                }
            },
            "account": {
                "type": "object",
                "required": ["name", "id"],
                "additionalProperties": false,
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_-]+$",
                        "description": "Unique in the file: ${account.name}, iam-warden/accounts patterns, ACCOUNT/Kind/name in reports, the account label of /metrics."
                    },
                    "id": {
                        "type": "string",
                        "pattern": "^[0-9]{12}$",
                        "description": "The 12-digit account id (quoted). Shards are assigned by it."
                    },
                    "roleArn": {
                        "type": "string",
                        "pattern": "^arn:[a-z-]+:iam::[0-9]{12}:role/",
                        "description": "The role assumed from the process's own credentials, in this account. Absent: the process's own credentials reach this account."
                    },
                    "externalId": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9+=,.@:/_-]{2,1224}$",
                        "description": "AssumeRole's ExternalId (the spoke role's trust policy requires it)."
                    },
                    "sessionName": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9+=,.@_-]{2,64}$",
                        "description": "AssumeRole's session name, as CloudTrail shows it (default iam-warden)."
                    },
                    "sessionDuration": {
                        "type": ["string", "integer"],
                        "description": "Seconds or a duration such as 1h; 15m to 12h."
                    },
                    "values": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean"]},
                        "description": "Values of ${var.NAME} in this account: beat --values, beaten by --var."
                    },
                    "valuesFiles": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Values files of this account, relative to the accounts file; before values."
                    },
                    "maxRequestsPerSecond": {
                        "type": ["integer", "string"],
                        "description": "This account's pace ceiling (beats --max-requests-per-second; 0: unpaced)."
                    }
                }
            }
        }
    })
}

/// [`accounts_json_schema`] as printed by `iam-warden schema --accounts`.
pub fn accounts_json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&accounts_json_schema()).unwrap_or_default();
    text.push('\n');
    text
}
