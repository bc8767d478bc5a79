//! Static definitions of the SCIM schemas Roster serves (RFC 7643).
//!
//! The tables below are the single source of truth for `/Schemas` and
//! `/ResourceTypes` discovery, input canonicalisation (attribute names are
//! case-insensitive, RFC 7643 §2.1), validation (type, required, mutability),
//! PATCH, filtering (`caseExact`) and projection (`returned`).
//!
//! The core User, Group and Enterprise User tables follow the JSON
//! representation in RFC 7643 §8.7.1 attribute by attribute, in the same
//! order, so they can be checked against it line by line. Deliberate
//! deviations, each marked where it occurs:
//!
//! * Group `displayName` is `required: true`: the §4.2 text says REQUIRED
//!   while §8.7.1 says `false` (a known erratum).
//! * Group `members` has an extra `display` sub-attribute (immutable), which
//!   Okta sends.
//! * User `addresses` has a `primary` sub-attribute: §8.7.1 omits it, but
//!   §2.4 defines `primary` for multi-valued attributes and the §8.2 example
//!   uses it on an address.
//!
//! The common attributes `id`, `externalId` and `meta` (RFC 7643 §3.1) belong
//! to no schema, as in §8.7.1; they are listed in [`COMMON_ATTRIBUTES`].

use serde_json::{json, Map, Value};

/// Core User schema URN (RFC 7643 §4.1).
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN (RFC 7643 §4.2).
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN (RFC 7643 §4.3).
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Roster's account-lifecycle extension URN.
pub const ROSTER_USER: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";
/// URN in the `schemas` array of a schema definition (RFC 7643 §7).
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// URN in the `schemas` array of a resource type (RFC 7643 §6).
pub const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// An attribute's data type (RFC 7643 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The name used for `type` in schema representations (RFC 7643 §7).
    pub const fn as_str(self) -> &'static str {
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

    /// Whether values are strings whose comparison can be case sensitive,
    /// i.e. whether `caseExact` means anything for this type.
    pub const fn is_textual(self) -> bool {
        matches!(self, AttrType::String | AttrType::Reference | AttrType::Binary)
    }
}

/// Whether and how an attribute can be written (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The name used for `mutability` in schema representations.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute is returned in a response (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The name used for `returned` in schema representations.
    pub const fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// How unique an attribute's value must be (RFC 7643 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The name used for `uniqueness` in schema representations.
    pub const fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// An attribute definition (RFC 7643 §7, "attributes").
#[derive(Debug)]
pub struct Attribute {
    pub name: &'static str,
    pub kind: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    /// Non-empty exactly when `kind` is [`AttrType::Complex`].
    pub sub_attributes: &'static [Attribute],
}

/// A schema definition (RFC 7643 §7).
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

/// A resource type: its core schema and extensions (RFC 7643 §6).
#[derive(Debug)]
pub struct ResourceType {
    /// E.g. `"User"`.
    pub id: &'static str,
    pub name: &'static str,
    /// Relative to the base URL, e.g. `"/Users"`.
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    /// Extension schemas and whether each is required.
    pub extensions: &'static [(&'static Schema, bool)],
}

/// Result of [`find_attribute`].
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// URN of the schema defining the attribute; `None` for a common
    /// attribute (`id`, `externalId`, `meta`), which belongs to no schema.
    pub schema_urn: Option<&'static str>,
    pub attr: &'static Attribute,
}

impl Found {
    /// The schema defining the attribute; `None` for a common attribute.
    pub fn schema(&self) -> Option<&'static Schema> {
        self.schema_urn.and_then(schema_by_urn)
    }
}

// ---------------------------------------------------------------------------
// Table-building helpers. Each constructor starts from the RFC 7643 §2.2
// defaults (single-valued, not required, caseExact false, readWrite, returned
// default, uniqueness none); the chained modifiers state only what differs.

const fn attr(name: &'static str, kind: AttrType, description: &'static str) -> Attribute {
    Attribute {
        name,
        kind,
        multi_valued: false,
        description,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
}

const fn string(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::String, description)
}

const fn boolean(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::Boolean, description)
}

const fn date_time(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::DateTime, description)
}

const fn binary(name: &'static str, description: &'static str) -> Attribute {
    attr(name, AttrType::Binary, description)
}

const fn reference(
    name: &'static str,
    reference_types: &'static [&'static str],
    description: &'static str,
) -> Attribute {
    Attribute { reference_types, ..attr(name, AttrType::Reference, description) }
}

const fn complex(name: &'static str, description: &'static str, sub_attributes: &'static [Attribute]) -> Attribute {
    Attribute { sub_attributes, ..attr(name, AttrType::Complex, description) }
}

/// A multi-valued complex attribute.
const fn multi_complex(
    name: &'static str,
    description: &'static str,
    sub_attributes: &'static [Attribute],
) -> Attribute {
    Attribute { multi_valued: true, ..complex(name, description, sub_attributes) }
}

impl Attribute {
    const fn required(self) -> Self {
        Attribute { required: true, ..self }
    }

    const fn case_exact(self) -> Self {
        Attribute { case_exact: true, ..self }
    }

    const fn mutability(self, mutability: Mutability) -> Self {
        Attribute { mutability, ..self }
    }

    const fn read_only(self) -> Self {
        self.mutability(Mutability::ReadOnly)
    }

    const fn immutable(self) -> Self {
        self.mutability(Mutability::Immutable)
    }

    const fn returned(self, returned: Returned) -> Self {
        Attribute { returned, ..self }
    }

    const fn uniqueness(self, uniqueness: Uniqueness) -> Self {
        Attribute { uniqueness, ..self }
    }

    const fn canonical(self, canonical_values: &'static [&'static str]) -> Self {
        Attribute { canonical_values, ..self }
    }
}

// ---------------------------------------------------------------------------
// Common attributes (RFC 7643 §3.1).

/// `id`, `externalId` and `meta`: present on every resource but part of no
/// schema (RFC 7643 §3.1), hence absent from the schemas' attribute lists.
pub static COMMON_ATTRIBUTES: &[Attribute] = &[
    string("id", "A unique identifier for a SCIM resource as defined by the service provider.")
        .case_exact()
        .read_only()
        .returned(Returned::Always)
        .uniqueness(Uniqueness::Server),
    string("externalId", "A String that is an identifier for the resource as defined by the provisioning client.")
        .case_exact(),
    complex(
        "meta",
        "A complex attribute containing resource metadata.",
        &[
            string("resourceType", "The name of the resource type of the resource.").case_exact().read_only(),
            date_time("created", "The \"DateTime\" that the resource was added to the service provider.").read_only(),
            date_time(
                "lastModified",
                "The most recent DateTime that the details of this resource were updated at the service provider.",
            )
            .read_only(),
            reference("location", &["uri"], "The URI of the resource being returned.").read_only(),
            string("version", "The version of the resource being returned.").case_exact().read_only(),
        ],
    )
    .read_only(),
];

// ---------------------------------------------------------------------------
// User (RFC 7643 §4.1, §8.7.1).

const DISPLAY: &str = "A human-readable name, primarily used for display purposes.  READ-ONLY.";
const PRIMARY: &str = "A Boolean value indicating the 'primary' or preferred attribute value for this attribute.  The primary attribute value 'true' MUST appear no more than once.";
const EMAILS: &str = "Email addresses for the user.  The value SHOULD be canonicalized by the service provider, e.g., 'bjensen@example.com' instead of 'bjensen@EXAMPLE.COM'. Canonical type values of 'work', 'home', and 'other'.";

/// The core User schema, in RFC 7643 §8.7.1 order.
pub static USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: &[
        string(
            "userName",
            "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value.  This identifier MUST be unique across the service provider's entire set of Users. REQUIRED.",
        )
        .required()
        .uniqueness(Uniqueness::Server),
        complex(
            "name",
            "The components of the user's real name. Providers MAY return just the full name as a single string in the formatted sub-attribute, or they MAY return just the individual component attributes using the other sub-attributes, or they MAY return both.  If both variants are returned, they SHOULD be describing the same name, with the formatted name indicating how the component attributes should be combined.",
            &[
                string("formatted", "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III')."),
                string("familyName", "The family name of the User, or last name in most Western languages (e.g., 'Jensen' given the full name 'Ms. Barbara J Jensen, III')."),
                string("givenName", "The given name of the User, or first name in most Western languages (e.g., 'Barbara' given the full name 'Ms. Barbara J Jensen, III')."),
                string("middleName", "The middle name(s) of the User (e.g., 'Jane' given the full name 'Ms. Barbara J Jensen, III')."),
                string("honorificPrefix", "The honorific prefix(es) of the User, or title in most Western languages (e.g., 'Ms.' given the full name 'Ms. Barbara J Jensen, III')."),
                string("honorificSuffix", "The honorific suffix(es) of the User, or suffix in most Western languages (e.g., 'III' given the full name 'Ms. Barbara J Jensen, III')."),
            ],
        ),
        string("displayName", "The name of the User, suitable for display to end-users.  The name SHOULD be the full name of the User being described, if known."),
        string("nickName", "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead of 'Robert'.  This attribute SHOULD NOT be used to represent a User's username (e.g., 'bjensen' or 'mpepperidge')."),
        reference("profileUrl", &["external"], "A fully qualified URL pointing to a page representing the User's online profile."),
        string("title", "The user's title, such as \"Vice President.\""),
        string("userType", "Used to identify the relationship between the organization and the user.  Typical values used might be 'Contractor', 'Employee', 'Intern', 'Temp', 'External', and 'Unknown', but any value may be used."),
        string("preferredLanguage", "Indicates the User's preferred written or spoken language.  Generally used for selecting a localized user interface; e.g., 'en_US' specifies the language English and country US."),
        string("locale", "Used to indicate the User's default location for purposes of localizing items such as currency, date time format, or numerical representations."),
        string("timezone", "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
        boolean("active", "A Boolean value indicating the User's administrative status."),
        string("password", "The User's cleartext password.  This attribute is intended to be used as a means to specify an initial password when creating a new User or to reset an existing User's password.")
            .mutability(Mutability::WriteOnly)
            .returned(Returned::Never),
        multi_complex(
            "emails",
            EMAILS,
            &[
                string("value", EMAILS),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
                    .canonical(&["work", "home", "other"]),
                boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred mailing address or primary email address.  The primary attribute value 'true' MUST appear no more than once."),
            ],
        ),
        multi_complex(
            "phoneNumbers",
            "Phone numbers for the User.  The value SHOULD be canonicalized by the service provider according to the format specified in RFC 3966, e.g., 'tel:+1-201-555-0123'. Canonical type values of 'work', 'home', 'mobile', 'fax', 'pager', and 'other'.",
            &[
                string("value", "Phone number of the User."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function, e.g., 'work', 'home', 'mobile'.")
                    .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
                boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred phone number or primary phone number.  The primary attribute value 'true' MUST appear no more than once."),
            ],
        ),
        multi_complex(
            "ims",
            "Instant messaging addresses for the User.",
            &[
                string("value", "Instant messaging address for the User."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.")
                    .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
                boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred messenger or primary messenger.  The primary attribute value 'true' MUST appear no more than once."),
            ],
        ),
        multi_complex(
            "photos",
            "URLs of photos of the User.",
            &[
                reference("value", &["external"], "URL of a photo of the User."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.")
                    .canonical(&["photo", "thumbnail"]),
                boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred photo or thumbnail.  The primary attribute value 'true' MUST appear no more than once."),
            ],
        ),
        multi_complex(
            "addresses",
            "A physical mailing address for this User. Canonical type values of 'work', 'home', and 'other'.  This attribute is a complex type with the following sub-attributes.",
            &[
                string("formatted", "The full mailing address, formatted for display or use with a mailing label.  This attribute MAY contain newlines."),
                string("streetAddress", "The full street address component, which may include house number, street name, P.O. box, and multi-line extended street address information.  This attribute MAY contain newlines."),
                string("locality", "The city or locality component."),
                string("region", "The state or region component."),
                string("postalCode", "The zip code or postal code component."),
                string("country", "The country name component."),
                string("type", "A label indicating the attribute's function, e.g., 'work' or 'home'.")
                    .canonical(&["work", "home", "other"]),
                // Deviation: absent from §8.7.1 but defined by §2.4 and used
                // on an address in the §8.2 example.
                boolean("primary", "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred mailing address.  The primary attribute value 'true' MUST appear no more than once."),
            ],
        ),
        multi_complex(
            "groups",
            "A list of groups to which the user belongs, either through direct membership, through nested groups, or dynamically calculated.",
            &[
                string("value", "The identifier of the User's group.").read_only(),
                reference("$ref", &["User", "Group"], "The URI of the corresponding 'Group' resource to which the user belongs.")
                    .read_only(),
                string("display", DISPLAY).read_only(),
                string("type", "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.")
                    .canonical(&["direct", "indirect"])
                    .read_only(),
            ],
        )
        .read_only(),
        multi_complex(
            "entitlements",
            "A list of entitlements for the User that represent a thing the User has.",
            &[
                string("value", "The value of an entitlement."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function."),
                boolean("primary", PRIMARY),
            ],
        ),
        multi_complex(
            "roles",
            "A list of roles for the User that collectively represent who the User is, e.g., 'Student', 'Faculty'.",
            &[
                string("value", "The value of a role."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function."),
                boolean("primary", PRIMARY),
            ],
        ),
        multi_complex(
            "x509Certificates",
            "A list of certificates issued to the User.",
            &[
                binary("value", "The value of an X.509 certificate."),
                string("display", DISPLAY),
                string("type", "A label indicating the attribute's function."),
                boolean("primary", PRIMARY),
            ],
        ),
    ],
};

// ---------------------------------------------------------------------------
// Group (RFC 7643 §4.2, §8.7.1).

/// The core Group schema, in RFC 7643 §8.7.1 order.
pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: &[
        // Deviation: §8.7.1 says required false; the §4.2 text says REQUIRED.
        string("displayName", "A human-readable name for the Group. REQUIRED.").required(),
        multi_complex(
            "members",
            "A list of members of the Group.",
            &[
                string("value", "Identifier of the member of this Group.").immutable(),
                reference(
                    "$ref",
                    &["User", "Group"],
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                )
                .immutable(),
                string("type", "A label indicating the type of resource, e.g., 'User' or 'Group'.")
                    .canonical(&["User", "Group"])
                    .immutable(),
                // Deviation: not in §8.7.1; Okta sends it. Kept as sent; when a client sends
                // none, Roster shows the member's current displayName.
                string("display", "A human-readable name for the member, primarily used for display purposes.")
                    .immutable(),
            ],
        ),
    ],
};

// ---------------------------------------------------------------------------
// Enterprise User extension (RFC 7643 §4.3, §8.7.1).

/// The Enterprise User extension schema, in RFC 7643 §8.7.1 order.
pub static ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
        string("costCenter", "Identifies the name of a cost center."),
        string("organization", "Identifies the name of an organization."),
        string("division", "Identifies the name of a division."),
        string("department", "Identifies the name of a department."),
        complex(
            "manager",
            "The User's manager.  A complex type that optionally allows service providers to represent organizational hierarchy by referencing the 'id' attribute of another User.",
            &[
                string("value", "The id of the SCIM resource representing the User's manager.  REQUIRED."),
                reference("$ref", &["User"], "The URI of the SCIM resource representing the User's manager.  REQUIRED."),
                string("displayName", "The displayName of the User's manager. OPTIONAL and READ-ONLY.")
                    .read_only(),
            ],
        ),
    ],
};

// ---------------------------------------------------------------------------
// Roster's account-lifecycle extension.

/// Roster's extension carrying the account lifecycle state.
pub static ROSTER_USER_SCHEMA: Schema = Schema {
    id: ROSTER_USER,
    name: "RosterUser",
    description: "Account lifecycle state of a Roster workplace account",
    attributes: &[
        string("lifecycleState", "The account's lifecycle state, set by Roster's account lifecycle: 'active', 'deactivated' or 'formerMember'.  READ-ONLY.")
            .case_exact()
            .canonical(&["active", "deactivated", "formerMember"])
            .read_only(),
        date_time("deactivatedAt", "When the account was last deactivated.  Absent while the account is active.  READ-ONLY.")
            .read_only(),
        boolean("formerMember", "Setting this to true irreversibly removes the person's profile fields.  It is accepted only on a deactivated account whose tenant grace period has passed, and may only change from false to true."),
        date_time("formerMemberSince", "When the account became a former member.  READ-ONLY.")
            .read_only(),
    ],
};

// ---------------------------------------------------------------------------
// Resource types (RFC 7643 §6, §8.6).

/// The User resource type, with the optional Enterprise and Roster extensions.
pub static USER_RESOURCE: ResourceType = ResourceType {
    id: "User",
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA,
    extensions: &[(&ENTERPRISE_USER_SCHEMA, false), (&ROSTER_USER_SCHEMA, false)],
};

/// The Group resource type (no extensions).
pub static GROUP_RESOURCE: ResourceType = ResourceType {
    id: "Group",
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_SCHEMA,
    extensions: &[],
};

/// Every schema Roster serves, in `/Schemas` order.
pub fn all_schemas() -> [&'static Schema; 4] {
    [&USER_SCHEMA, &GROUP_SCHEMA, &ENTERPRISE_USER_SCHEMA, &ROSTER_USER_SCHEMA]
}

/// Every resource type Roster serves, in `/ResourceTypes` order.
pub fn all_resource_types() -> [&'static ResourceType; 2] {
    [&USER_RESOURCE, &GROUP_RESOURCE]
}

/// The schema with this URN, compared case-insensitively.
pub fn schema_by_urn(urn: &str) -> Option<&'static Schema> {
    all_schemas().into_iter().find(|s| s.id.eq_ignore_ascii_case(urn))
}

/// The common attribute (`id`, `externalId`, `meta`) with this name,
/// compared case-insensitively.
pub fn common_attribute(name: &str) -> Option<&'static Attribute> {
    by_name(COMMON_ATTRIBUTES, name)
}

/// Looks up a top-level attribute of `resource` by name, case-insensitively.
///
/// Without `urn`, searches the common attributes, then the core schema, then
/// the extensions in order. With `urn` (case-insensitive), searches only that
/// schema, which must be the resource's core schema or one of its
/// extensions; the core URN also reaches the common attributes, which
/// clients often qualify with it. Sub-attributes are reached through
/// [`Attribute::sub_attribute`].
pub fn find_attribute(resource: &ResourceType, urn: Option<&str>, name: &str) -> Option<Found> {
    let common = || common_attribute(name).map(|attr| Found { schema_urn: None, attr });
    let within =
        |schema: &'static Schema| schema.attribute(name).map(|attr| Found { schema_urn: Some(schema.id), attr });
    match urn {
        None => common()
            .or_else(|| within(resource.schema))
            .or_else(|| resource.extensions.iter().find_map(|&(s, _)| within(s))),
        Some(urn) if urn.eq_ignore_ascii_case(resource.schema.id) => common().or_else(|| within(resource.schema)),
        Some(urn) => {
            resource.extensions.iter().find(|(s, _)| s.id.eq_ignore_ascii_case(urn)).and_then(|&(s, _)| within(s))
        }
    }
}

fn by_name(attributes: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// Joins a base URL and a path without doubling the slash.
fn location(base_url: &str, path: &str, id: &str) -> String {
    format!("{}/{}/{}", base_url.trim_end_matches('/'), path, id)
}

impl Schema {
    /// The top-level attribute with this name, compared case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        by_name(self.attributes, name)
    }

    /// The RFC 7643 §7 representation served at `/Schemas/{id}`. `base_url`
    /// is the SCIM base URL, e.g. `https://example.com/scim/v2`.
    pub fn to_json(&self, base_url: &str) -> Value {
        json!({
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            // A writeOnly attribute (`password`) is accepted only to be dropped: Roster stores
            // none, so it publishes none (OpenID IPSIE SCIM profile §6.1.2: the Application
            // MUST NOT support `password`; Okta sends one, and refusing it would fail
            // provisioning).
            "attributes": self
                .attributes
                .iter()
                .filter(|a| a.mutability != Mutability::WriteOnly)
                .map(Attribute::to_json)
                .collect::<Vec<_>>(),
            "meta": {
                "resourceType": "Schema",
                "location": location(base_url, "Schemas", self.id),
            },
        })
    }
}

impl Attribute {
    /// The sub-attribute with this name, compared case-insensitively.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static Attribute> {
        by_name(self.sub_attributes, name)
    }

    /// The RFC 7643 §7 representation of this attribute.
    ///
    /// Like §8.7.1, `caseExact` is emitted only for textual types (string,
    /// reference, binary) and `uniqueness` for every type but boolean; empty
    /// `canonicalValues`, `referenceTypes` and `subAttributes` are omitted.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), self.name.into());
        obj.insert("type".into(), self.kind.as_str().into());
        obj.insert("multiValued".into(), self.multi_valued.into());
        obj.insert("description".into(), self.description.into());
        obj.insert("required".into(), self.required.into());
        if self.kind.is_textual() {
            obj.insert("caseExact".into(), self.case_exact.into());
        }
        if !self.canonical_values.is_empty() {
            obj.insert("canonicalValues".into(), self.canonical_values.into());
        }
        if !self.reference_types.is_empty() {
            obj.insert("referenceTypes".into(), self.reference_types.into());
        }
        if !self.sub_attributes.is_empty() {
            let subs = self.sub_attributes.iter().map(Attribute::to_json);
            obj.insert("subAttributes".into(), Value::Array(subs.collect()));
        }
        obj.insert("mutability".into(), self.mutability.as_str().into());
        obj.insert("returned".into(), self.returned.as_str().into());
        if self.kind != AttrType::Boolean {
            obj.insert("uniqueness".into(), self.uniqueness.as_str().into());
        }
        Value::Object(obj)
    }
}

impl ResourceType {
    /// The RFC 7643 §6 representation served at `/ResourceTypes/{id}`
    /// (shape as in §8.6). `schemaExtensions` is omitted when empty.
    pub fn to_json(&self, base_url: &str) -> Value {
        let mut obj = Map::new();
        obj.insert("schemas".into(), json!([RESOURCE_TYPE_URN]));
        obj.insert("id".into(), self.id.into());
        obj.insert("name".into(), self.name.into());
        obj.insert("endpoint".into(), self.endpoint.into());
        obj.insert("description".into(), self.description.into());
        obj.insert("schema".into(), self.schema.id.into());
        if !self.extensions.is_empty() {
            let extensions =
                self.extensions.iter().map(|(schema, required)| json!({ "schema": schema.id, "required": required }));
            obj.insert("schemaExtensions".into(), Value::Array(extensions.collect()));
        }
        obj.insert(
            "meta".into(),
            json!({
                "resourceType": "ResourceType",
                "location": location(base_url, "ResourceTypes", self.id),
            }),
        );
        Value::Object(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> &'static Attribute {
        USER_SCHEMA.attribute(name).expect(name)
    }

    fn sub_names(attr: &Attribute) -> Vec<&'static str> {
        attr.sub_attributes.iter().map(|a| a.name).collect()
    }

    /// Every attribute of every schema, including common attributes and
    /// sub-attributes, with its parent (if any).
    fn every_attribute() -> Vec<(Option<&'static Attribute>, &'static Attribute)> {
        let mut out = Vec::new();
        let tops = all_schemas().into_iter().flat_map(|s| s.attributes.iter()).chain(COMMON_ATTRIBUTES.iter());
        for top in tops {
            out.push((None, top));
            out.extend(top.sub_attributes.iter().map(|sub| (Some(top), sub)));
        }
        out
    }

    fn assert_no_nulls(value: &Value, path: &str) {
        match value {
            Value::Null => panic!("null at {path}"),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    assert_no_nulls(item, &format!("{path}[{i}]"));
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    assert_no_nulls(item, &format!("{path}.{key}"));
                }
            }
            _ => {}
        }
    }

    fn rfc(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn attribute_lookup_is_case_insensitive() {
        assert_eq!(user("USERNAME").name, "userName");
        assert_eq!(user("Emails").name, "emails");
        assert_eq!(user("emails").sub_attribute("VALUE").unwrap().name, "value");
        assert_eq!(user("groups").sub_attribute("$REF").unwrap().name, "$ref");
        assert_eq!(user("NAME").sub_attribute("givenname").unwrap().name, "givenName");
        assert!(USER_SCHEMA.attribute("members").is_none());
        assert!(user("emails").sub_attribute("locality").is_none());
        assert!(user("userName").sub_attribute("value").is_none());
    }

    #[test]
    fn user_name_is_required_case_insensitive_and_unique_per_server() {
        let a = user("userName");
        assert_eq!(a.kind, AttrType::String);
        assert!(a.required);
        assert!(!a.case_exact);
        assert_eq!(a.uniqueness, Uniqueness::Server);
        assert_eq!(a.mutability, Mutability::ReadWrite);
    }

    #[test]
    fn id_is_case_exact_read_only_always_returned_and_unique() {
        let id = common_attribute("ID").unwrap();
        assert!(id.case_exact);
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert_eq!(id.returned, Returned::Always);
        assert_eq!(id.uniqueness, Uniqueness::Server);

        let external = common_attribute("externalid").unwrap();
        assert!(external.case_exact);
        assert_eq!(external.mutability, Mutability::ReadWrite);

        let meta = common_attribute("meta").unwrap();
        assert_eq!(meta.mutability, Mutability::ReadOnly);
        assert_eq!(sub_names(meta), ["resourceType", "created", "lastModified", "location", "version"]);
        assert_eq!(meta.sub_attribute("created").unwrap().kind, AttrType::DateTime);
        assert_eq!(meta.sub_attribute("location").unwrap().kind, AttrType::Reference);
    }

    #[test]
    fn common_attributes_are_not_in_any_schema() {
        for schema in all_schemas() {
            for name in ["id", "externalId", "meta"] {
                assert!(schema.attribute(name).is_none(), "{} has {name}", schema.id);
            }
        }
    }

    #[test]
    fn multi_valued_complex_user_attributes_have_the_rfc_sub_attributes() {
        let plural = ["value", "display", "type", "primary"];
        let expected: &[(&str, &[&str])] = &[
            ("emails", &plural),
            ("phoneNumbers", &plural),
            ("ims", &plural),
            ("photos", &plural),
            // §8.7.1 has no display; primary is our documented addition.
            (
                "addresses",
                &["formatted", "streetAddress", "locality", "region", "postalCode", "country", "type", "primary"],
            ),
            ("groups", &["value", "$ref", "display", "type"]),
            ("entitlements", &plural),
            ("roles", &plural),
            ("x509Certificates", &plural),
        ];
        let actual: Vec<_> = USER_SCHEMA
            .attributes
            .iter()
            .filter(|a| a.multi_valued && a.kind == AttrType::Complex)
            .map(|a| a.name)
            .collect();
        let wanted: Vec<_> = expected.iter().map(|(name, _)| *name).collect();
        assert_eq!(actual, wanted);
        for (name, subs) in expected {
            assert_eq!(sub_names(user(name)), *subs, "{name}");
        }
        assert_eq!(user("photos").sub_attribute("value").unwrap().kind, AttrType::Reference);
        let cert = user("x509Certificates").sub_attribute("value").unwrap();
        assert_eq!(cert.kind, AttrType::Binary);
    }

    #[test]
    fn user_attributes_follow_rfc_order() {
        let names: Vec<_> = USER_SCHEMA.attributes.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates",
            ]
        );
        assert_eq!(
            sub_names(user("name")),
            ["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix",]
        );
    }

    #[test]
    fn canonical_types_match_the_rfc() {
        let canonical = |attr: &str| user(attr).sub_attribute("type").unwrap().canonical_values;
        assert_eq!(canonical("emails"), ["work", "home", "other"]);
        assert_eq!(canonical("phoneNumbers"), ["work", "home", "mobile", "fax", "pager", "other"]);
        assert_eq!(canonical("ims"), ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]);
        assert_eq!(canonical("photos"), ["photo", "thumbnail"]);
        assert_eq!(canonical("addresses"), ["work", "home", "other"]);
        assert_eq!(canonical("groups"), ["direct", "indirect"]);
        assert!(canonical("entitlements").is_empty());
        assert!(canonical("roles").is_empty());
        assert!(canonical("x509Certificates").is_empty());
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let password = user("password");
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);
    }

    #[test]
    fn the_published_user_schema_does_not_declare_password() {
        let published = USER_SCHEMA.to_json("https://example.com/scim/v2");
        let names: Vec<&str> =
            published["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert!(!names.contains(&"password"), "{names:?}");
        assert!(names.contains(&"userName") && names.contains(&"active"), "{names:?}");
    }

    #[test]
    fn groups_and_all_its_sub_attributes_are_read_only() {
        let groups = user("groups");
        assert!(groups.multi_valued);
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        assert!(groups.sub_attribute("primary").is_none());
        for sub in groups.sub_attributes {
            assert_eq!(sub.mutability, Mutability::ReadOnly, "{}", sub.name);
        }
    }

    #[test]
    fn group_deviations_from_rfc_8_7_1() {
        let display_name = GROUP_SCHEMA.attribute("displayname").unwrap();
        assert!(display_name.required);
        let members = GROUP_SCHEMA.attribute("members").unwrap();
        assert!(members.multi_valued);
        assert_eq!(members.mutability, Mutability::ReadWrite);
        assert_eq!(sub_names(members), ["value", "$ref", "type", "display"]);
        for sub in members.sub_attributes {
            assert_eq!(sub.mutability, Mutability::Immutable, "{}", sub.name);
        }
        let reference = members.sub_attribute("$ref").unwrap();
        assert_eq!(reference.reference_types, ["User", "Group"]);
    }

    #[test]
    fn enterprise_manager_has_value_ref_and_read_only_display_name() {
        let manager = ENTERPRISE_USER_SCHEMA.attribute("MANAGER").unwrap();
        assert!(!manager.multi_valued);
        assert_eq!(sub_names(manager), ["value", "$ref", "displayName"]);
        let display_name = manager.sub_attribute("displayname").unwrap();
        assert_eq!(display_name.mutability, Mutability::ReadOnly);
        let reference = manager.sub_attribute("$ref").unwrap();
        assert_eq!(reference.reference_types, ["User"]);
        let names: Vec<_> = ENTERPRISE_USER_SCHEMA.attributes.iter().map(|a| a.name).collect();
        assert_eq!(names, ["employeeNumber", "costCenter", "organization", "division", "department", "manager"]);
    }

    #[test]
    fn roster_lifecycle_state_is_read_only_and_case_exact() {
        let state = ROSTER_USER_SCHEMA.attribute("lifecyclestate").unwrap();
        assert_eq!(state.kind, AttrType::String);
        assert!(state.case_exact);
        assert_eq!(state.mutability, Mutability::ReadOnly);
        assert_eq!(state.returned, Returned::Default);
        assert_eq!(state.canonical_values, ["active", "deactivated", "formerMember"]);

        let kinds: Vec<_> = ROSTER_USER_SCHEMA.attributes.iter().map(|a| (a.name, a.kind, a.mutability)).collect();
        assert_eq!(
            kinds,
            [
                ("lifecycleState", AttrType::String, Mutability::ReadOnly),
                ("deactivatedAt", AttrType::DateTime, Mutability::ReadOnly),
                ("formerMember", AttrType::Boolean, Mutability::ReadWrite),
                ("formerMemberSince", AttrType::DateTime, Mutability::ReadOnly),
            ]
        );
    }

    #[test]
    fn tables_are_internally_consistent() {
        for (parent, a) in every_attribute() {
            let at = match parent {
                Some(p) => format!("{}.{}", p.name, a.name),
                None => a.name.to_owned(),
            };
            // RFC 7643 §2.1 ATTRNAME; "$ref" is the one reserved exception.
            let mut chars = a.name.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
            let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            assert!(a.name == "$ref" || (first_ok && rest_ok), "bad name {at}");
            assert_eq!(a.kind == AttrType::Complex, !a.sub_attributes.is_empty(), "complex iff sub-attributes: {at}");
            assert_eq!(
                a.kind == AttrType::Reference,
                !a.reference_types.is_empty(),
                "reference iff referenceTypes: {at}"
            );
            assert!(a.canonical_values.is_empty() || a.kind == AttrType::String, "canonicalValues on non-string: {at}");
            assert!(a.kind.is_textual() || !a.case_exact, "caseExact on {at}");
            assert!(!a.description.is_empty(), "no description: {at}");
            if let Some(p) = parent {
                assert!(!a.sub_attributes.is_empty() || !a.multi_valued, "{at}");
                assert!(p.kind == AttrType::Complex, "{at}");
            }
        }
        // No two attributes in one list differ only by case.
        let lists = all_schemas()
            .into_iter()
            .map(|s| s.attributes)
            .chain([COMMON_ATTRIBUTES])
            .flat_map(|list| std::iter::once(list).chain(list.iter().map(|a| a.sub_attributes)));
        for list in lists {
            for (i, a) in list.iter().enumerate() {
                for b in &list[i + 1..] {
                    assert!(!a.name.eq_ignore_ascii_case(b.name), "duplicate {}", a.name);
                }
            }
        }
    }

    #[test]
    fn schema_by_urn_is_case_insensitive() {
        assert_eq!(schema_by_urn("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER").unwrap().id, USER);
        assert_eq!(schema_by_urn(&ENTERPRISE_USER.to_lowercase()).unwrap().id, ENTERPRISE_USER);
        assert_eq!(schema_by_urn(GROUP).unwrap().name, "Group");
        assert_eq!(schema_by_urn(ROSTER_USER).unwrap().name, "RosterUser");
        assert!(schema_by_urn("urn:ietf:params:scim:schemas:core:2.0:Schema").is_none());
        assert!(schema_by_urn("").is_none());
    }

    #[test]
    fn find_attribute_resolves_common_core_and_extension_names() {
        let manager = find_attribute(
            &USER_RESOURCE,
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"),
            "manager",
        )
        .unwrap();
        assert_eq!(manager.schema_urn, Some(ENTERPRISE_USER));
        assert_eq!(manager.attr.name, "manager");

        let external = find_attribute(&USER_RESOURCE, None, "EXTERNALID").unwrap();
        assert_eq!(external.schema_urn, None);
        assert_eq!(external.attr.name, "externalId");

        let name = find_attribute(&USER_RESOURCE, None, "name").unwrap();
        assert_eq!(name.schema_urn, Some(USER));
        assert!(std::ptr::eq(name.schema().unwrap(), &USER_SCHEMA));
        assert!(external.schema().is_none());
        assert_eq!(name.attr.kind, AttrType::Complex);

        // Unqualified names fall through to the extensions.
        let number = find_attribute(&USER_RESOURCE, None, "employeeNumber").unwrap();
        assert_eq!(number.schema_urn, Some(ENTERPRISE_USER));
        let state = find_attribute(&USER_RESOURCE, None, "lifecycleState").unwrap();
        assert_eq!(state.schema_urn, Some(ROSTER_USER));
    }

    #[test]
    fn find_attribute_honours_an_explicit_urn() {
        let lower_enterprise = ENTERPRISE_USER.to_ascii_lowercase();
        let found = find_attribute(&USER_RESOURCE, Some(&lower_enterprise), "Manager").unwrap();
        assert_eq!(found.schema_urn, Some(ENTERPRISE_USER));

        // The core URN reaches core and common attributes only.
        let id = find_attribute(&USER_RESOURCE, Some(USER), "id").unwrap();
        assert_eq!(id.schema_urn, None);
        assert!(find_attribute(&USER_RESOURCE, Some(USER), "manager").is_none());

        // An extension URN reaches only that extension.
        assert!(find_attribute(&USER_RESOURCE, Some(ENTERPRISE_USER), "userName").is_none());
        assert!(find_attribute(&USER_RESOURCE, Some(ROSTER_USER), "id").is_none());

        // A URN the resource type does not use finds nothing.
        assert!(find_attribute(&GROUP_RESOURCE, Some(USER), "userName").is_none());
        assert!(find_attribute(&GROUP_RESOURCE, Some(ENTERPRISE_USER), "manager").is_none());
        assert!(find_attribute(&GROUP_RESOURCE, None, "manager").is_none());
        let members = find_attribute(&GROUP_RESOURCE, Some(GROUP), "MEMBERS").unwrap();
        assert_eq!(members.schema_urn, Some(GROUP));
    }

    #[test]
    fn user_name_json_matches_rfc_8_7_1() {
        let expected = rfc(r#"{
            "name" : "userName",
            "type" : "string",
            "multiValued" : false,
            "description" : "Unique identifier for the User, typically used by the user to directly authenticate to the service provider. Each User MUST include a non-empty userName value.  This identifier MUST be unique across the service provider's entire set of Users. REQUIRED.",
            "required" : true,
            "caseExact" : false,
            "mutability" : "readWrite",
            "returned" : "default",
            "uniqueness" : "server"
        }"#);
        assert_eq!(user("userName").to_json(), expected);
    }

    #[test]
    fn emails_type_and_primary_json_match_rfc_8_7_1() {
        let emails = user("emails");
        let expected_type = rfc(r#"{
            "name" : "type",
            "type" : "string",
            "multiValued" : false,
            "description" : "A label indicating the attribute's function, e.g., 'work' or 'home'.",
            "required" : false,
            "caseExact" : false,
            "canonicalValues" : [
              "work",
              "home",
              "other"
            ],
            "mutability" : "readWrite",
            "returned" : "default",
            "uniqueness" : "none"
        }"#);
        assert_eq!(emails.sub_attribute("type").unwrap().to_json(), expected_type);

        let expected_primary = rfc(r#"{
            "name" : "primary",
            "type" : "boolean",
            "multiValued" : false,
            "description" : "A Boolean value indicating the 'primary' or preferred attribute value for this attribute, e.g., the preferred mailing address or primary email address.  The primary attribute value 'true' MUST appear no more than once.",
            "required" : false,
            "mutability" : "readWrite",
            "returned" : "default"
        }"#);
        assert_eq!(emails.sub_attribute("primary").unwrap().to_json(), expected_primary);
    }

    #[test]
    fn profile_url_json_matches_rfc_8_7_1() {
        let expected = rfc(r#"{
            "name" : "profileUrl",
            "type" : "reference",
            "referenceTypes" : ["external"],
            "multiValued" : false,
            "description" : "A fully qualified URL pointing to a page representing the User's online profile.",
            "required" : false,
            "caseExact" : false,
            "mutability" : "readWrite",
            "returned" : "default",
            "uniqueness" : "none"
        }"#);
        assert_eq!(user("profileUrl").to_json(), expected);
    }

    #[test]
    fn schema_json_has_section_7_keys_and_never_null() {
        fn check_attribute(value: &Value) {
            let obj = value.as_object().unwrap();
            for key in ["name", "type", "multiValued", "description", "required", "mutability", "returned"] {
                assert!(obj.contains_key(key), "{key} missing in {value}");
            }
            let complex = obj["type"] == "complex";
            assert_eq!(obj.contains_key("subAttributes"), complex, "{value}");
            if let Some(subs) = obj.get("subAttributes") {
                let subs = subs.as_array().unwrap();
                assert!(!subs.is_empty());
                subs.iter().for_each(check_attribute);
            }
            for key in ["canonicalValues", "referenceTypes"] {
                if let Some(list) = obj.get(key) {
                    assert!(!list.as_array().unwrap().is_empty(), "empty {key}");
                }
            }
        }

        for schema in all_schemas() {
            let json = schema.to_json("https://example.com/scim/v2");
            assert_no_nulls(&json, schema.id);
            assert_eq!(json["schemas"], json!([SCHEMA_URN]));
            assert_eq!(json["id"], schema.id);
            assert_eq!(json["name"], schema.name);
            assert_eq!(json["description"], schema.description);
            assert_eq!(json["meta"]["resourceType"], "Schema");
            assert_eq!(json["meta"]["location"], format!("https://example.com/scim/v2/Schemas/{}", schema.id));
            let attributes = json["attributes"].as_array().unwrap();
            let published = schema.attributes.iter().filter(|a| a.mutability != Mutability::WriteOnly).count();
            assert_eq!(attributes.len(), published);
            attributes.iter().for_each(check_attribute);
        }
        for attr in COMMON_ATTRIBUTES {
            let json = attr.to_json();
            assert_no_nulls(&json, attr.name);
            check_attribute(&json);
        }
    }

    #[test]
    fn schema_location_does_not_double_the_slash() {
        let json = GROUP_SCHEMA.to_json("https://example.com/v2/");
        assert_eq!(
            json["meta"]["location"],
            "https://example.com/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group"
        );
    }

    #[test]
    fn resource_type_json_matches_section_8_6_shape() {
        let user = USER_RESOURCE.to_json("https://example.com/v2");
        assert_no_nulls(&user, "User");
        assert_eq!(
            user,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": "User",
                "name": "User",
                "endpoint": "/Users",
                "description": "User Account",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:User",
                "schemaExtensions": [
                    {
                        "schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                        "required": false
                    },
                    {
                        "schema": "urn:ietf:params:scim:schemas:extension:roster:2.0:User",
                        "required": false
                    }
                ],
                "meta": {
                    "location": "https://example.com/v2/ResourceTypes/User",
                    "resourceType": "ResourceType"
                }
            })
        );

        let group = GROUP_RESOURCE.to_json("https://example.com/v2/");
        assert_eq!(
            group,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                "id": "Group",
                "name": "Group",
                "endpoint": "/Groups",
                "description": "Group",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
                "meta": {
                    "location": "https://example.com/v2/ResourceTypes/Group",
                    "resourceType": "ResourceType"
                }
            })
        );
    }

    #[test]
    fn every_extension_of_a_resource_type_is_a_served_schema() {
        for rt in all_resource_types() {
            assert!(std::ptr::eq(schema_by_urn(rt.schema.id).unwrap(), rt.schema));
            for (ext, _) in rt.extensions {
                assert!(std::ptr::eq(schema_by_urn(ext.id).unwrap(), *ext));
            }
        }
    }
}
