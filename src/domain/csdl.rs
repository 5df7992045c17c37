//! The OData CSDL (XML) description of the Agent Registry, generated from
//! [`super::schema`], for `GET /beta/$metadata`. Pure text building.

use super::Entity;
use super::schema::{ComplexType, EnumType, Kind};
use std::fmt::Write;

/// `microsoft.graph.agentSkill` → `graph.agentSkill`
fn alias(qualified: &str) -> String {
    format!("graph.{}", qualified.trim_start_matches("microsoft.graph."))
}

fn short(qualified: &str) -> &str {
    qualified.trim_start_matches("microsoft.graph.")
}

fn edm_type(kind: Kind) -> String {
    match kind {
        Kind::String => "Edm.String".into(),
        Kind::Boolean => "Edm.Boolean".into(),
        Kind::Int32 => "Edm.Int32".into(),
        Kind::Double => "Edm.Double".into(),
        Kind::DateTimeOffset => "Edm.DateTimeOffset".into(),
        Kind::StringCollection => "Collection(Edm.String)".into(),
        Kind::Complex(t) => alias(t.qualified),
        Kind::ComplexCollection(t) => format!("Collection({})", alias(t.qualified)),
        Kind::Open => "Edm.Untyped".into(),
        Kind::OpenCollection => "Collection(Edm.Untyped)".into(),
        Kind::Untyped => "Edm.Untyped".into(),
        Kind::Enum(t) => alias(t.qualified),
    }
}

/// Every complex type reachable from the entity types, each once, in order of discovery.
fn complex_types() -> Vec<&'static ComplexType> {
    fn visit(kind: Kind, out: &mut Vec<&'static ComplexType>) {
        if let Kind::Complex(t) | Kind::ComplexCollection(t) = kind
            && !out.iter().any(|c| std::ptr::eq(*c, t))
        {
            out.push(t);
            for p in t.properties {
                visit(p.kind, out);
            }
        }
    }
    let mut out = Vec::new();
    for ty in Entity::ALL.map(Entity::ty) {
        for p in ty.properties {
            visit(p.kind, &mut out);
        }
    }
    out
}

/// Every enumeration the complex and entity types use, each once.
fn enum_types() -> Vec<&'static EnumType> {
    let mut out: Vec<&'static EnumType> = Vec::new();
    let kinds = Entity::ALL
        .iter()
        .flat_map(|e| e.ty().properties.iter().map(|p| p.kind))
        .chain(
            complex_types()
                .into_iter()
                .flat_map(|t| t.properties.iter().map(|p| p.kind)),
        );
    for kind in kinds {
        if let Kind::Enum(t) = kind
            && !out.iter().any(|e| std::ptr::eq(*e, t))
        {
            out.push(t);
        }
    }
    out
}

/// The singletons the entity sets hang from, each with its type's name:
/// `agentRegistry` (`graph.agentRegistry`), `copilot` (`graph.copilotRoot`).
const SINGLETONS: [(&str, &str); 2] = [
    ("agentRegistry", "agentRegistry"),
    ("copilot", "copilotRoot"),
];

fn property(out: &mut String, name: &str, kind: Kind) {
    let nullable = if kind.is_collection() || name == "id" {
        " Nullable=\"false\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "        <Property Name=\"{name}\" Type=\"{}\"{nullable}/>",
        edm_type(kind)
    );
}

/// The `$metadata` document.
pub fn metadata_document() -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str(
        "<edmx:Edmx Version=\"4.01\" xmlns:edmx=\"http://docs.oasis-open.org/odata/ns/edmx\">\n",
    );
    out.push_str("  <edmx:DataServices>\n");
    out.push_str("    <Schema Namespace=\"microsoft.graph\" Alias=\"graph\" xmlns=\"http://docs.oasis-open.org/odata/ns/edm\">\n");
    out.push_str("      <EntityType Name=\"entity\" Abstract=\"true\">\n        <Key>\n          <PropertyRef Name=\"id\"/>\n        </Key>\n");
    property(&mut out, "id", Kind::String);
    out.push_str("      </EntityType>\n");
    for ty in Entity::ALL.map(Entity::ty) {
        let _ = writeln!(
            out,
            "      <EntityType Name=\"{}\" BaseType=\"graph.entity\">",
            ty.short_name()
        );
        for p in ty.properties.iter().filter(|p| p.name != "id") {
            property(&mut out, p.name, p.kind);
        }
        for n in ty.navigations {
            let target = alias(n.target.qualified);
            let ty = if n.collection {
                format!("Collection({target})")
            } else {
                target
            };
            let _ = writeln!(
                out,
                "        <NavigationProperty Name=\"{}\" Type=\"{ty}\"/>",
                n.name
            );
        }
        out.push_str("      </EntityType>\n");
    }
    for t in complex_types() {
        let _ = writeln!(out, "      <ComplexType Name=\"{}\">", short(t.qualified));
        for p in t.properties {
            property(&mut out, p.name, p.kind);
        }
        out.push_str("      </ComplexType>\n");
    }
    for t in enum_types() {
        let _ = writeln!(out, "      <EnumType Name=\"{}\">", short(t.qualified));
        for (n, member) in t.members.iter().enumerate() {
            let _ = writeln!(out, "        <Member Name=\"{member}\" Value=\"{n}\"/>");
        }
        out.push_str("      </EnumType>\n");
    }
    for (singleton, type_name) in SINGLETONS {
        let _ = writeln!(
            out,
            "      <EntityType Name=\"{type_name}\" BaseType=\"graph.entity\">"
        );
        for ty in Entity::ALL.map(Entity::ty) {
            if ty.container != singleton {
                continue;
            }
            let _ = writeln!(
                out,
                "        <NavigationProperty Name=\"{}\" Type=\"Collection({})\" ContainsTarget=\"true\"/>",
                ty.entity_set,
                alias(ty.qualified)
            );
        }
        out.push_str("      </EntityType>\n");
    }
    out.push_str("      <EntityContainer Name=\"GraphService\">\n");
    for (singleton, type_name) in SINGLETONS {
        let _ = writeln!(
            out,
            "        <Singleton Name=\"{singleton}\" Type=\"graph.{type_name}\"/>"
        );
    }
    out.push_str("      </EntityContainer>\n");
    out.push_str("    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entity_type_property_and_navigation_is_described() {
        let doc = metadata_document();
        for ty in Entity::ALL.map(Entity::ty) {
            assert!(doc.contains(&format!("<EntityType Name=\"{}\"", ty.short_name())));
            for p in ty.properties {
                assert!(doc.contains(&format!("Name=\"{}\"", p.name)), "{}", p.name);
            }
            for n in ty.navigations {
                assert!(doc.contains(&format!("<NavigationProperty Name=\"{}\"", n.name)));
            }
        }
        assert!(doc.contains("<ComplexType Name=\"agentSkill\">"));
        assert!(
            doc.contains("<ComplexType Name=\"agentExtension\">"),
            "nested complex types"
        );
        assert!(doc.contains("Type=\"Collection(graph.agentSkill)\""));
        assert_eq!(doc.matches("<ComplexType ").count(), complex_types().len());
    }
}
