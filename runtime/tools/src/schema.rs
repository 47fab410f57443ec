//! JSON Schemas of tool arguments, in the shape model providers accept.

use schemars::{JsonSchema, generate::SchemaSettings};
use serde_json::Value;

/// The JSON Schema of `T` as tool parameters: a plain object schema without `$schema` or
/// `title`, every subschema inlined (a recursive type also stays in `$defs`, referenced as
/// `#/$defs/...`, or `#` for the root). `T`'s doc comment is the schema's `description`.
///
/// ```
/// /// Finds an order.
/// #[derive(schemars::JsonSchema)]
/// struct LookupOrder {
///     /// The order's id.
///     order_id: String,
/// }
///
/// let schema = weir_tools::parameters_schema::<LookupOrder>();
/// assert_eq!(schema["type"], "object");
/// assert_eq!(schema["description"], "Finds an order.");
/// assert_eq!(schema["required"][0], "order_id");
/// ```
///
/// # Panics
///
/// If `T`'s schema is not an object schema (`T` is not a struct or a map): providers accept
/// only objects as arguments, so this is a mistake in the code that declares the tool.
pub fn parameters_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.inline_subschemas = true;
            settings.meta_schema = None;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    let root = schema.as_object_mut().expect("a root schema is a JSON object");
    assert!(
        root.get("type").and_then(Value::as_str) == Some("object"),
        "tool arguments must be a struct or a map (a JSON object), `{}` is not",
        T::schema_name()
    );
    root.remove("title");
    root.remove("$schema");
    remove_number_formats(&mut schema);
    schema
}

/// Removes the `format` schemars gives numbers (`uint32`, `double`): not standard JSON
/// Schema, and some providers refuse formats they do not know. `minimum` still bounds them.
fn remove_number_formats(schema: &mut Value) {
    const NUMBER_FORMATS: [&str; 12] =
        ["int8", "int16", "int32", "int64", "int", "uint8", "uint16", "uint32", "uint64", "uint", "float", "double"];
    match schema {
        Value::Object(object) => {
            if object.get("format").and_then(Value::as_str).is_some_and(|format| NUMBER_FORMATS.contains(&format)) {
                object.remove("format");
            }
            object.values_mut().for_each(remove_number_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_number_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Address {
        city: String,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Customer {
        address: Address,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Forest {
        trees: Vec<Tree>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Quantities {
        count: u32,
        ratio: f64,
        /// A property may be called `format` too.
        format: String,
    }

    #[test]
    fn nested_types_are_inlined() {
        let schema = parameters_schema::<Customer>();
        assert_eq!(schema["properties"]["address"]["properties"]["city"]["type"], "string");
        assert!(schema.get("$defs").is_none(), "{schema}");
        assert!(schema.get("title").is_none() && schema.get("$schema").is_none(), "{schema}");
    }

    #[test]
    fn recursive_types_keep_their_definitions() {
        let schema = parameters_schema::<Forest>();
        let mut references = Vec::new();
        collect_references(&schema, &mut references);
        assert!(!references.is_empty(), "{schema}");
        for reference in references {
            let name = reference.strip_prefix("#/$defs/").unwrap();
            assert_eq!(schema["$defs"][name]["type"], "object", "{schema}");
        }

        let root_recursion = parameters_schema::<Tree>();
        assert_eq!(root_recursion["properties"]["children"]["items"]["$ref"], "#", "{root_recursion}");
    }

    fn collect_references(schema: &Value, references: &mut Vec<String>) {
        match schema {
            Value::Object(object) => {
                references.extend(object.get("$ref").and_then(Value::as_str).map(str::to_owned));
                object.values().for_each(|value| collect_references(value, references));
            }
            Value::Array(items) => items.iter().for_each(|item| collect_references(item, references)),
            _ => {}
        }
    }

    #[test]
    fn number_formats_are_removed() {
        let schema = parameters_schema::<Quantities>();
        assert_eq!(schema["properties"]["count"], json!({"type": "integer", "minimum": 0}));
        assert_eq!(schema["properties"]["ratio"], json!({"type": "number"}));
        assert_eq!(schema["properties"]["format"]["type"], "string");
    }

    #[test]
    #[should_panic(expected = "must be a struct or a map")]
    fn non_object_arguments_are_refused() {
        parameters_schema::<String>();
    }
}
