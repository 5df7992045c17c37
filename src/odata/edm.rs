//! The Entity Data Model vocabulary the query layer reads: entity and
//! complex types, their properties and navigations, and the text form of
//! `Edm.DateTimeOffset`. The types themselves (the Agent Registry's) are
//! data in `domain::schema`; this module knows nothing of them, so the query
//! layer depends on nothing else of Agentry's.

/// What a property holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    String,
    Boolean,
    Int32,
    Double,
    DateTimeOffset,
    StringCollection,
    Complex(&'static ComplexType),
    ComplexCollection(&'static ComplexType),
    /// An open type: any JSON object, kept exactly as sent (annotations too).
    Open,
    OpenCollection,
    /// `Edm.Untyped`: any JSON value, kept exactly as sent.
    Untyped,
    /// A string that must be one of an enumeration's members.
    Enum(&'static EnumType),
}

impl Kind {
    pub fn is_collection(self) -> bool {
        matches!(
            self,
            Kind::StringCollection | Kind::ComplexCollection(_) | Kind::OpenCollection
        )
    }

    /// How the kind is named in error messages.
    pub fn edm_name(self) -> &'static str {
        match self {
            Kind::String => "Edm.String",
            Kind::Boolean => "Edm.Boolean",
            Kind::Int32 => "Edm.Int32",
            Kind::Double => "Edm.Double",
            Kind::DateTimeOffset => "Edm.DateTimeOffset",
            Kind::StringCollection => "Collection(Edm.String)",
            Kind::Complex(t) => t.qualified,
            Kind::ComplexCollection(_) => "a collection of objects",
            Kind::Open => "an object",
            Kind::OpenCollection => "a collection of objects",
            Kind::Untyped => "Edm.Untyped",
            Kind::Enum(t) => t.qualified,
        }
    }
}

/// Who may write a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    /// Maintained by the server; values sent by clients are ignored.
    ServerOwned,
}

#[derive(Debug)]
pub struct Property {
    pub name: &'static str,
    pub kind: Kind,
    pub access: Access,
}

#[derive(Debug)]
pub struct ComplexType {
    pub qualified: &'static str,
    pub properties: &'static [Property],
}

impl ComplexType {
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }
}

/// An enumeration: a string property holding one of `members`.
#[derive(Debug)]
pub struct EnumType {
    pub qualified: &'static str,
    pub members: &'static [&'static str],
}

/// A navigation property of an entity type.
#[derive(Debug)]
pub struct Navigation {
    pub name: &'static str,
    pub target: &'static EntityType,
    pub collection: bool,
}

#[derive(Debug)]
pub struct EntityType {
    /// `microsoft.graph.agentInstance`
    pub qualified: &'static str,
    /// `agentInstances`, the entity set under [`Self::container`].
    pub entity_set: &'static str,
    /// The singleton the entity set hangs from: `agentRegistry`, `copilot`.
    pub container: &'static str,
    /// Properties in the order they are written, `id` first.
    pub properties: &'static [Property],
    pub navigations: &'static [Navigation],
    /// Properties a create must carry, with a non-null value.
    pub required_on_create: &'static [&'static str],
}

impl EntityType {
    pub fn property(&self, name: &str) -> Option<&'static Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn navigation(&self, name: &str) -> Option<&'static Navigation> {
        self.navigations.iter().find(|n| n.name == name)
    }

    /// `agentInstance`
    pub fn short_name(&self) -> &'static str {
        self.qualified.trim_start_matches("microsoft.graph.")
    }
}

/// The text of an `Edm.DateTimeOffset` as Graph writes it: UTC with seven
/// fractional digits, for example `2025-01-01T00:00:00.1234567Z`.
pub fn date_time_offset(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("a UTC time always formats")
}

/// Reads an `Edm.DateTimeOffset` (RFC 3339, any offset).
pub fn parse_date_time_offset(text: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}
