//! The schemas this service provider serves (RFC 7643 §4, §8.7) and attribute resolution.
//!
//! The core User, the enterprise User extension and the core Group are data: one
//! [`Attribute`] tree each, from which `/Schemas` is rendered and against which every filter,
//! PATCH path, `attributes` list and incoming resource is resolved. Attribute names are matched
//! case-insensitively (RFC 7643 §2.1) and stored under the schema's spelling, so a resource
//! reads back in one canonical shape whatever case a client wrote it in.
//!
//! The common attributes `id`, `externalId` and `meta` (RFC 7643 §3.1) belong to every
//! resource and are resolved here too, but, as in the RFC's own schema representations, they
//! are not listed in `/Schemas`.

use serde_json::{Map, Value, json};
use std::sync::LazyLock;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
pub const SERVICE_PROVIDER_CONFIG_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// RFC 7643 §7 `returned`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: Vec<Attribute>,
    pub description: &'static str,
}

impl Attribute {
    fn new(name: &'static str, ty: AttrType, description: &'static str) -> Attribute {
        Attribute {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: Vec::new(),
            description,
        }
    }

    fn required(mut self) -> Attribute {
        self.required = true;
        self
    }

    fn case_exact(mut self) -> Attribute {
        self.case_exact = true;
        self
    }

    fn multi(mut self) -> Attribute {
        self.multi_valued = true;
        self
    }

    fn mutability(mut self, m: Mutability) -> Attribute {
        self.mutability = m;
        self
    }

    fn returned(mut self, r: Returned) -> Attribute {
        self.returned = r;
        self
    }

    fn unique(mut self) -> Attribute {
        self.uniqueness = Uniqueness::Server;
        self
    }

    fn canonical(mut self, values: &'static [&'static str]) -> Attribute {
        self.canonical_values = values;
        self
    }

    fn refs(mut self, types: &'static [&'static str]) -> Attribute {
        self.reference_types = types;
        self
    }

    /// A complex attribute's sub-attributes; a read-only parent makes them read-only too.
    fn sub(mut self, subs: Vec<Attribute>) -> Attribute {
        let parent = self.mutability;
        self.sub_attributes = subs
            .into_iter()
            .map(|s| if parent == Mutability::ReadOnly { s.mutability(Mutability::ReadOnly) } else { s })
            .collect();
        self
    }

    /// The sub-attribute called `name`, in any case.
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The definition values of this attribute are compared by: a complex attribute compares
    /// by its `value` sub-attribute (RFC 7644 §3.4.2.2), anything else by itself.
    pub fn comparable(&self) -> Option<&Attribute> {
        if self.ty == AttrType::Complex { self.sub_attribute("value") } else { Some(self) }
    }

    /// The `/Schemas` representation.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), json!(self.name));
        obj.insert("type".into(), json!(self.ty.as_str()));
        obj.insert("multiValued".into(), json!(self.multi_valued));
        obj.insert("description".into(), json!(self.description));
        obj.insert("required".into(), json!(self.required));
        if !self.canonical_values.is_empty() {
            obj.insert("canonicalValues".into(), json!(self.canonical_values));
        }
        obj.insert("caseExact".into(), json!(self.case_exact));
        obj.insert("mutability".into(), json!(self.mutability.as_str()));
        obj.insert("returned".into(), json!(self.returned.as_str()));
        obj.insert("uniqueness".into(), json!(self.uniqueness.as_str()));
        if !self.reference_types.is_empty() {
            obj.insert("referenceTypes".into(), json!(self.reference_types));
        }
        if !self.sub_attributes.is_empty() {
            obj.insert(
                "subAttributes".into(),
                Value::Array(self.sub_attributes.iter().map(Attribute::to_json).collect()),
            );
        }
        Value::Object(obj)
    }
}

fn string(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::String, description)
}

fn boolean(name: &'static str, description: &'static str) -> Attribute {
    Attribute::new(name, AttrType::Boolean, description)
}

fn reference(name: &'static str, description: &'static str, types: &'static [&'static str]) -> Attribute {
    Attribute::new(name, AttrType::Reference, description).refs(types).case_exact()
}

fn complex(name: &'static str, description: &'static str, subs: Vec<Attribute>) -> Attribute {
    Attribute::new(name, AttrType::Complex, description).sub(subs)
}

/// The `value`, `display`, `type` and `primary` quartet of RFC 7643 §2.4.
fn multi_valued(
    name: &'static str,
    description: &'static str,
    value: Attribute,
    types: &'static [&'static str],
) -> Attribute {
    let mut subs = vec![value, string("display", "A human-readable name, primarily used for display purposes.")];
    let ty = string("type", "A label indicating the attribute's function.");
    subs.push(if types.is_empty() { ty } else { ty.canonical(types) });
    subs.push(boolean("primary", "Whether this is the primary value; true appears at most once."));
    Attribute::new(name, AttrType::Complex, description).multi().sub(subs)
}

/// A schema: its URN, name and attributes.
#[derive(Clone, Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The attribute called `name`, in any case.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas/{id}` representation; `location` is the absolute URL of that endpoint.
    pub fn to_json(&self, location: &str) -> Value {
        json!({
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": self.attributes.iter().map(Attribute::to_json).collect::<Vec<_>>(),
            "meta": {"resourceType": "Schema", "location": location},
        })
    }
}

fn user_schema() -> Schema {
    Schema {
        id: USER_URN,
        name: "User",
        description: "User Account",
        attributes: vec![
            string("userName", "Unique identifier for the User, used to authenticate; unique per service provider.")
                .required()
                .unique(),
            complex(
                "name",
                "The components of the user's real name.",
                vec![
                    string("formatted", "The full name, formatted for display."),
                    string("familyName", "The family name of the User."),
                    string("givenName", "The given name of the User."),
                    string("middleName", "The middle name(s) of the User."),
                    string("honorificPrefix", "The honorific prefix(es) of the User."),
                    string("honorificSuffix", "The honorific suffix(es) of the User."),
                ],
            ),
            string("displayName", "The name of the User, suitable for display to end-users."),
            string("nickName", "The casual way to address the user in real life."),
            reference("profileUrl", "A fully qualified URL pointing to the user's online profile.", &["external"]),
            string("title", "The user's title, such as \"Vice President\"."),
            string("userType", "The relationship between the organization and the user."),
            string("preferredLanguage", "The User's preferred written or spoken language."),
            string("locale", "The User's default location for localization."),
            string("timezone", "The User's time zone in the 'Olson' time zone database format."),
            boolean("active", "The User's administrative status."),
            string("password", "The User's cleartext password; accepted and never stored or returned.")
                .mutability(Mutability::WriteOnly)
                .returned(Returned::Never),
            multi_valued(
                "emails",
                "Email addresses for the user.",
                string("value", "Email address for the user."),
                &["work", "home", "other"],
            ),
            multi_valued(
                "phoneNumbers",
                "Phone numbers for the User.",
                string("value", "Phone number of the User."),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_valued(
                "ims",
                "Instant messaging addresses for the User.",
                string("value", "Instant messaging address for the User."),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi_valued(
                "photos",
                "URLs of photos of the User.",
                reference("value", "URL of a photo of the User.", &["external"]),
                &["photo", "thumbnail"],
            ),
            Attribute::new("addresses", AttrType::Complex, "A physical mailing address for this User.").multi().sub(
                vec![
                    string("formatted", "The full mailing address, formatted for display."),
                    string("streetAddress", "The full street address component."),
                    string("locality", "The city or locality component."),
                    string("region", "The state or region component."),
                    string("postalCode", "The zip code or postal code component."),
                    string("country", "The country name component."),
                    string("type", "A label indicating the attribute's function.")
                        .canonical(&["work", "home", "other"]),
                    boolean("primary", "Whether this is the primary address; true appears at most once."),
                ],
            ),
            Attribute::new("groups", AttrType::Complex, "A list of groups to which the user belongs.")
                .multi()
                .mutability(Mutability::ReadOnly)
                .sub(vec![
                    string("value", "The identifier of the User's group.").case_exact(),
                    reference("$ref", "The URI of the corresponding Group resource.", &["User", "Group"]),
                    string("display", "A human-readable name, primarily used for display purposes."),
                    string("type", "How the membership is derived.").canonical(&["direct", "indirect"]),
                ]),
            multi_valued(
                "entitlements",
                "A list of entitlements for the User.",
                string("value", "The value of an entitlement."),
                &[],
            ),
            multi_valued("roles", "A list of roles for the User.", string("value", "The value of a role."), &[]),
            multi_valued(
                "x509Certificates",
                "A list of certificates issued to the User.",
                Attribute::new("value", AttrType::Binary, "The value of an X.509 certificate.").case_exact(),
                &[],
            ),
        ],
    }
}

fn enterprise_user_schema() -> Schema {
    Schema {
        id: ENTERPRISE_USER_URN,
        name: "EnterpriseUser",
        description: "Enterprise User",
        attributes: vec![
            string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person by the organization."),
            string("costCenter", "Identifies the name of a cost center."),
            string("organization", "Identifies the name of an organization."),
            string("division", "Identifies the name of a division."),
            string("department", "Identifies the name of a department."),
            complex(
                "manager",
                "The User's manager.",
                vec![
                    string("value", "The id of the SCIM resource representing the User's manager.").case_exact(),
                    reference("$ref", "The URI of the SCIM resource representing the User's manager.", &["User"]),
                    string("displayName", "The displayName of the User's manager.").mutability(Mutability::ReadOnly),
                ],
            ),
        ],
    }
}

fn group_schema() -> Schema {
    Schema {
        id: GROUP_URN,
        name: "Group",
        description: "Group",
        attributes: vec![
            string("displayName", "A human-readable name for the Group.").required(),
            Attribute::new("members", AttrType::Complex, "A list of members of the Group.").multi().sub(vec![
                string("value", "Identifier of the member of this Group.")
                    .case_exact()
                    .mutability(Mutability::Immutable),
                reference("$ref", "The URI of the corresponding member resource.", &["User", "Group"])
                    .mutability(Mutability::Immutable),
                string("type", "The type of the member.")
                    .canonical(&["User", "Group"])
                    .mutability(Mutability::Immutable),
                string("display", "A human-readable name for the member."),
            ]),
        ],
    }
}

/// The common attributes of every resource (RFC 7643 §3.1).
fn common_attributes() -> Vec<Attribute> {
    vec![
        string("id", "A unique identifier for the resource, issued by the service provider.")
            .case_exact()
            .mutability(Mutability::ReadOnly)
            .returned(Returned::Always)
            .unique(),
        string("externalId", "An identifier for the resource as defined by the provisioning client.").case_exact(),
        meta_attribute(),
    ]
}

fn meta_attribute() -> Attribute {
    Attribute::new("meta", AttrType::Complex, "Resource metadata.").mutability(Mutability::ReadOnly).sub(vec![
        string("resourceType", "The name of the resource type of the resource.").case_exact(),
        Attribute::new("created", AttrType::DateTime, "When the resource was added to the service provider."),
        Attribute::new("lastModified", AttrType::DateTime, "When the resource was last modified."),
        reference("location", "The URI of the resource being returned.", &["uri"]),
        string("version", "The version of the resource being returned.").case_exact(),
    ])
}

/// The resource types this crate serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    /// The resource type's name, as in `meta.resourceType`.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint path segment, `Users` or `Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "Users",
            ResourceKind::Group => "Groups",
        }
    }

    /// The resource type definition.
    pub fn resource_type(self) -> &'static ResourceType {
        match self {
            ResourceKind::User => &REGISTRY.user,
            ResourceKind::Group => &REGISTRY.group,
        }
    }
}

/// A resource type (RFC 7643 §6): its core schema and extensions.
#[derive(Debug)]
pub struct ResourceType {
    pub kind: ResourceKind,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: Vec<&'static Schema>,
    common: &'static [Attribute],
}

/// Where an attribute lives in a resource's JSON: top level, or inside an extension's object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Core,
    Extension(&'static str),
}

impl Container {
    /// The attribute's object in `resource` (the resource itself, or its extension object).
    pub fn get<'a>(&self, resource: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
        match self {
            Container::Core => Some(resource),
            Container::Extension(urn) => resource.get(*urn).and_then(Value::as_object),
        }
    }

    /// The attribute's object in `resource`, created when missing (an extension's object;
    /// a non-object value there is replaced). `None` only if that fails, which it cannot.
    pub fn get_mut<'a>(&self, resource: &'a mut Map<String, Value>) -> Option<&'a mut Map<String, Value>> {
        match self {
            Container::Core => Some(resource),
            Container::Extension(urn) => {
                let slot = resource.entry(urn.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                slot.as_object_mut()
            }
        }
    }
}

/// An attribute path resolved against a resource type.
#[derive(Clone, Copy, Debug)]
pub enum Resolved {
    /// A bare extension URN: the extension's whole object.
    Extension(&'static Schema),
    /// An attribute, and possibly one of its sub-attributes.
    Attribute { container: Container, attribute: &'static Attribute, sub: Option<&'static Attribute> },
}

impl ResourceType {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The schema (core or extension) with URN `urn`, in any case.
    pub fn schema_by_urn(&self, urn: &str) -> Option<&'static Schema> {
        std::iter::once(self.schema).chain(self.extensions.iter().copied()).find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// A top-level attribute of the core schema or the common attributes, in any case.
    pub fn core_attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.common.iter().find(|a| a.name.eq_ignore_ascii_case(name)).or_else(|| self.schema.attribute(name))
    }

    /// Resolves `[urn:]name[.sub]`. Unqualified names are the core schema's (and the common
    /// attributes); extension attributes need their URN, as RFC 7644 §3.10 says.
    pub fn resolve(&self, urn: Option<&str>, name: &str, sub: Option<&str>) -> Option<Resolved> {
        let (container, attribute) = match urn {
            None => (Container::Core, self.core_attribute(name)?),
            Some(urn) => {
                if let Some(schema) = self.schema_by_urn(&format!("{urn}:{name}")) {
                    // `urn:...:enterprise:2.0:User` itself: the last segment was not an
                    // attribute but the end of the URN.
                    if sub.is_some() || schema.id == self.schema.id {
                        return None;
                    }
                    return Some(Resolved::Extension(schema));
                }
                let schema = self.schema_by_urn(urn)?;
                if schema.id == self.schema.id {
                    (Container::Core, self.core_attribute(name)?)
                } else {
                    (Container::Extension(schema.id), schema.attribute(name)?)
                }
            }
        };
        let sub = match sub {
            None => None,
            Some(s) => Some(attribute.sub_attribute(s)?),
        };
        Some(Resolved::Attribute { container, attribute, sub })
    }

    /// The `/ResourceTypes/{id}` representation.
    pub fn to_json(&self, location: &str) -> Value {
        let mut obj = json!({
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.name(),
            "name": self.name(),
            "description": self.description,
            "endpoint": format!("/{}", self.kind.endpoint()),
            "schema": self.schema.id,
            "meta": {"resourceType": "ResourceType", "location": location},
        });
        if !self.extensions.is_empty()
            && let Some(map) = obj.as_object_mut()
        {
            let ext: Vec<Value> = self.extensions.iter().map(|s| json!({"schema": s.id, "required": false})).collect();
            map.insert("schemaExtensions".into(), Value::Array(ext));
        }
        obj
    }
}

struct Registry {
    user: ResourceType,
    group: ResourceType,
}

static USER_SCHEMA: LazyLock<Schema> = LazyLock::new(user_schema);
static ENTERPRISE_SCHEMA: LazyLock<Schema> = LazyLock::new(enterprise_user_schema);
static GROUP_SCHEMA: LazyLock<Schema> = LazyLock::new(group_schema);
static COMMON: LazyLock<Vec<Attribute>> = LazyLock::new(common_attributes);

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    user: ResourceType {
        kind: ResourceKind::User,
        description: "User Account",
        schema: &USER_SCHEMA,
        extensions: vec![&ENTERPRISE_SCHEMA],
        common: &COMMON,
    },
    group: ResourceType {
        kind: ResourceKind::Group,
        description: "Group",
        schema: &GROUP_SCHEMA,
        extensions: Vec::new(),
        common: &COMMON,
    },
});

/// Every schema served at `/Schemas`, in a stable order.
pub fn schemas() -> [&'static Schema; 3] {
    [&USER_SCHEMA, &ENTERPRISE_SCHEMA, &GROUP_SCHEMA]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_any_case_and_with_their_urn() {
        let user = ResourceKind::User.resource_type();
        let check = |urn: Option<&str>, name: &str, sub: Option<&str>, expect: Option<(&str, Option<&str>)>| {
            let got = user.resolve(urn, name, sub).map(|r| match r {
                Resolved::Extension(s) => (s.id, None),
                Resolved::Attribute { attribute, sub, .. } => (attribute.name, sub.map(|s| s.name)),
            });
            assert_eq!(got, expect, "{urn:?} {name} {sub:?}");
        };
        check(None, "USERNAME", None, Some(("userName", None)));
        check(None, "name", Some("GIVENNAME"), Some(("name", Some("givenName"))));
        check(None, "meta", Some("lastModified"), Some(("meta", Some("lastModified"))));
        check(Some(USER_URN), "userName", None, Some(("userName", None)));
        check(Some(&ENTERPRISE_USER_URN.to_lowercase()), "department", None, Some(("department", None)));
        check(Some(ENTERPRISE_USER_URN), "manager", Some("value"), Some(("manager", Some("value"))));
        check(
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0"),
            "User",
            None,
            Some((ENTERPRISE_USER_URN, None)),
        );
        check(None, "department", None, None);
        check(None, "name", Some("nope"), None);
        check(Some("urn:example:unknown"), "x", None, None);
    }

    #[test]
    fn read_only_parents_make_read_only_children() {
        let groups = ResourceKind::User.resource_type().core_attribute("groups").unwrap();
        assert!(groups.sub_attributes.iter().all(|s| s.mutability == Mutability::ReadOnly));
    }
}
