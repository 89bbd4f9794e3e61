//! The `OpenAPI` document as served: the routes of `docs/openapi.json`, plus,
//! for a caller who shows a token, a path and a request schema for each
//! workflow it may run, generated from the declared inputs (types,
//! required, choices, `@max_len`, docs).

use serde_json::{Map, Value, json};

use super::library::Library;
use crate::check::{InputDef, Type, WorkflowDef};

/// The document for a caller who may run the workflows `may_run` allows;
/// `None` (no token) gets the routes alone, naming no workflow.
pub(super) fn document(library: &Library, may_run: Option<&dyn Fn(&str) -> bool>) -> Value {
    static ROUTES: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
        serde_json::from_str(super::OPENAPI).expect("docs/openapi.json is valid JSON")
    });
    let mut document = ROUTES.clone();
    let Some(may_run) = may_run else {
        return document;
    };
    let template = document["paths"]["/v1/workflows/{name}"]["post"].clone();
    let mut contexts = Vec::new();
    for entry in library.entries() {
        let workflow = entry.workflow();
        if !may_run(&workflow.name) {
            continue;
        }
        let schema_name = format!("Inputs.{}", workflow.name);
        document["components"]["schemas"][&schema_name] = inputs_schema(workflow);
        let reference = json!({ "$ref": format!("#/components/schemas/{schema_name}") });
        let mut operation = template.clone();
        operation["summary"] = json!(format!("Run `{}`", workflow.name));
        if !workflow.doc.is_empty() {
            operation["description"] = json!(workflow.doc);
        }
        if let Some(parameters) = operation["parameters"].as_array_mut() {
            parameters.retain(|parameter| parameter["in"] != "path");
        }
        operation["requestBody"]["content"]["application/json"]["schema"] = reference.clone();
        document["paths"][format!("/v1/workflows/{}", workflow.name)] =
            json!({ "post": operation });
        contexts.push(json!({
            "type": "object",
            "properties": {
                "workflow_type": { "const": workflow.name },
                "context": reference,
            },
            "required": ["workflow_type", "context"],
            "additionalProperties": false,
        }));
    }
    document["paths"]["/v1/workflows/execute"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"] = json!({ "oneOf": contexts });
    document
}

/// The context a workflow takes, as a JSON Schema.
fn inputs_schema(workflow: &WorkflowDef) -> Value {
    let properties: Map<String, Value> = workflow
        .inputs
        .iter()
        .map(|input| (input.name.clone(), input_schema(input)))
        .collect();
    let required: Vec<&str> = workflow
        .inputs
        .iter()
        .filter(|input| input.is_required())
        .map(|input| input.name.as_str())
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn input_schema(input: &InputDef) -> Value {
    let mut schema = input.ty.json_schema();
    if let Some(limit) = input.max_len {
        let text = matches!(&input.ty, Type::Text)
            || matches!(&input.ty, Type::Optional(inner) if **inner == Type::Text);
        if text {
            set(&mut schema, "maxLength", json!(limit));
        }
    }
    if let Some(default) = &input.default {
        set(&mut schema, "default", default.clone());
    }
    if !input.doc.is_empty() {
        set(&mut schema, "description", json!(input.doc));
    }
    schema
}

/// Sets `key` on the schema, or on its non-null branch for an optional.
fn set(schema: &mut Value, key: &str, value: Value) {
    match schema
        .get_mut("anyOf")
        .and_then(|branches| branches.get_mut(0))
    {
        Some(inner) => inner[key] = value,
        None => schema[key] = value,
    }
}
