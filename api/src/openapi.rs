//! What the OpenAPI document says beyond the routes' annotations: the error answers of every
//! operation, the rules on list items and map keys, and the rules that tie fields together. The
//! rules themselves live in [`sessions::validate`] and the extractors of [`crate::error`]; this
//! module only says them in the document, so a generated client knows them.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, Array, ArrayItems, Object, ObjectBuilder,
    OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// A realm name as a path may carry it: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting
/// with `_` (reserved for the server), and neither `.` nor `..` (which no URL can address).
pub const REALM_PATTERN: &str = r"^([A-Za-z0-9-][A-Za-z0-9._-]{0,63}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,62}|\.\.[A-Za-z0-9._-]{1,62})$";

/// Text without control characters (identifiers and free text; lengths are said separately).
pub const TEXT_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// Text without control characters that is not only white space (a value that names something
/// exactly).
pub const NOT_BLANK_PATTERN: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$";

/// A grant scope: no spaces, no control characters.
pub const SCOPE_PATTERN: &str = r"^[^\x00-\x20\x7F-\x9F]*$";

/// A session id: the 36-character form of a UUID.
pub const SID_PATTERN: &str =
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";

/// An address filter in a removal: not empty (a listing's may be, meaning no filter).
fn address_pattern() -> &'static str {
    sessions::address::ADDRESS_FILTER_PATTERN
        .strip_prefix("^$|")
        .expect("the pattern allows the empty string first")
}

/// The error answers an operation may give, each the [`crate::error::ErrorBody`] shape, by the
/// name under which the document keeps them.
const ERRORS: [(&str, &str, &str); 9] = [
    (
        "400",
        "BadRequest",
        "The request breaks a documented rule. Codes: `invalid_request` (a field's value), \
         `invalid_path`, `invalid_query`, `reserved_realm`, `malformed_json`, \
         `missing_content_type`, `missing_session_token`, `invalid_results_token`, \
         `results_token_mismatch`, `backchannel_uri_not_allowed`.",
    ),
    (
        "401",
        "Unauthorized",
        "No API key, or not a valid one (`unauthorized`). Send `Authorization: Bearer <key>`.",
    ),
    (
        "403",
        "Forbidden",
        "The key lacks the scope the operation needs (`insufficient_scope`: a \
         `sessions:issue` key outside the data plane, or an administrative key on it), or its \
         scopes do not permit the change (`forbidden`: a `sessions:read` key may read \
         administration but changes nothing), or the key is limited to some realms and the \
         operation reaches another realm or every realm (`forbidden`).",
    ),
    (
        "404",
        "NotFound",
        "The realm, or the object the path names, does not exist (`realm_not_found`, \
         `session_not_found`, `client_not_found`, `delivery_not_found`, `not_found`).",
    ),
    (
        "409",
        "Conflict",
        "The request collides with the current state (`conflict`, `quota_exceeded`).",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than 65536 bytes (`body_too_large`).",
    ),
    (
        "422",
        "UnprocessableEntity",
        "The JSON body does not have the documented shape: a missing or unknown field, or a \
         value of the wrong type (`invalid_body`).",
    ),
    (
        "500",
        "InternalError",
        "A failure on the server's side (`internal_error`); the message names the request id \
         under which the log holds the details.",
    ),
    (
        "503",
        "ServiceUnavailable",
        "The request ran past its time limit (`timed_out`; a change it started still runs to \
         its end and is recorded in the audit log), or a PostgreSQL store could not answer for \
         now: a statement ran past its timeout, or the database is unreachable, restarting or \
         failing over (`store_unavailable`). Try again after the `Retry-After` header's seconds; a \
         change cut off while it was being written may or may not have been made.",
    ),
];

/// Adds what the annotations cannot say to the document of the annotated routes.
pub fn complete(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (_, name, description) in ERRORS {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build();
        let mut response = ResponseBuilder::new()
            .description(description)
            .content("application/json", content);
        if name == "ServiceUnavailable" {
            let seconds = ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer));
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(seconds)
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        let response = response.build();
        components
            .responses
            .insert(name.to_owned(), RefOr::T(response));
    }
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            add_errors(op);
            constrain_address_parameter(op);
        }
    }
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(schema) = schema else { continue };
        constrain(name, schema);
    }
    components
        .schemas
        .insert("JwkSet".to_owned(), RefOr::T(jwk_set()));
    let jwks_ok = doc
        .paths
        .paths
        .get_mut("/.well-known/jwks.json")
        .and_then(|item| item.get.as_mut())
        .and_then(|op| op.responses.responses.get_mut("200"));
    if let Some(RefOr::T(ok)) = jwks_ok {
        for content in ok.content.values_mut() {
            content.schema = Some(RefOr::Ref(Ref::from_schema_name("JwkSet")));
        }
    }
}

/// The JSON Web Key Set of `/.well-known/jwks.json` (RFC 7517): the logout-token signing keys,
/// P-256 keys for ES256.
fn jwk_set() -> Schema {
    let s = || ObjectBuilder::new().schema_type(SchemaType::new(Type::String));
    let key = ObjectBuilder::new()
        .description(Some("A public key (RFC 7517, RFC 7518 section 6.2)"))
        .property("kty", s().enum_values(Some(["EC"])))
        .required("kty")
        .property(
            "kid",
            s().description(Some("The key id logout tokens name")),
        )
        .required("kid")
        .property("use", s())
        .property("alg", s())
        .property("crv", s())
        .property("x", s())
        .property("y", s());
    Schema::Object(
        ObjectBuilder::new()
            .property("keys", Array::builder().items(key))
            .required("keys")
            .build(),
    )
}

/// The error answers that follow from what an operation takes: a key, a path, a query, a body.
/// Errors only some operations give (409, a 403 for a property) are in their annotations.
fn add_errors(op: &mut Operation) {
    // The public operations (health, metrics, keys, this document) take no key.
    if op.security.as_ref().is_none_or(Vec::is_empty) {
        return;
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params
        .iter()
        .any(|p| p.parameter_in == utoipa::openapi::path::ParameterIn::Path);
    let has_body = op.request_body.is_some();
    let wanted = [
        ("400", !params.is_empty() || has_body),
        ("401", true),
        ("403", true),
        ("404", has_path),
        ("413", has_body),
        ("422", has_body),
        ("500", true),
        ("503", true),
    ];
    for (status, needed) in wanted {
        if !needed || op.responses.responses.contains_key(status) {
            continue;
        }
        let name = ERRORS
            .iter()
            .find(|(s, _, _)| *s == status)
            .map(|(_, n, _)| *n)
            .expect("every status has a response");
        op.responses
            .responses
            .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
    }
}

/// An `ip` query parameter follows [`sessions::address::ADDRESS_FILTER_PATTERN`] (too long for
/// an annotation, which takes only a literal).
fn constrain_address_parameter(op: &mut Operation) {
    use utoipa::openapi::path::ParameterIn;
    for p in op.parameters.iter_mut().flatten() {
        if p.name == "ip" && p.parameter_in == ParameterIn::Query {
            if let Some(RefOr::T(Schema::Object(o))) = &mut p.schema {
                o.pattern = Some(sessions::address::ADDRESS_FILTER_PATTERN.to_owned());
            }
        }
    }
}

/// A string schema: `min` to `max` characters matching `pattern`.
fn string(min: Option<usize>, max: usize, pattern: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .min_length(min)
            .max_length(Some(max))
            .pattern(Some(pattern))
            .build(),
    )
}

/// 1 to 255 bytes, no control characters ([`sessions::validate::identifier`]).
fn identifier() -> Schema {
    string(Some(1), 255, TEXT_PATTERN)
}

/// At most 255 bytes, no control characters ([`sessions::validate::text`]).
fn text() -> Schema {
    string(None, 255, TEXT_PATTERN)
}

/// An identifier that is not only white space ([`sessions::validate::not_blank`]).
fn not_blank() -> Schema {
    string(Some(1), 255, NOT_BLANK_PATTERN)
}

fn object(schema: &mut Schema) -> &mut Object {
    match schema {
        Schema::Object(o) => o,
        _ => panic!("the schema is an object"),
    }
}

/// The array property `field` of an object schema.
fn array<'a>(o: &'a mut Object, field: &str) -> &'a mut Array {
    match o.properties.get_mut(field) {
        Some(RefOr::T(Schema::Array(a))) => a,
        _ => panic!("{field} is an array"),
    }
}

/// Each item of the array property `field` follows `item`.
fn items(o: &mut Object, field: &str, item: Schema) {
    array(o, field).items = ArrayItems::RefOrSchema(Box::new(RefOr::T(item)));
}

/// The map property `field`: names are identifiers, values free text.
fn properties_map(o: &mut Object) {
    o.property_names = Some(Box::new(identifier()));
    o.additional_properties = Some(Box::new(AdditionalProperties::RefOr(RefOr::T(text()))));
}

/// A schema that allows only `null` (or, as a property, absence).
fn null() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Null))
            .build(),
    ))
}

/// An object schema whose properties `fields` hold a value other than `null`.
fn present(fields: &[&str], schema_type: Type) -> Schema {
    let mut b = ObjectBuilder::new();
    for f in fields {
        b = b.required(*f).property(
            *f,
            ObjectBuilder::new().schema_type(SchemaType::new(schema_type.clone())),
        );
    }
    Schema::Object(b.build())
}

/// The rules on one component schema that attributes cannot carry.
fn constrain(name: &str, schema: &mut Schema) {
    match name {
        "NewSession" => {
            let o = object(schema);
            items(o, "client_ids", identifier());
            match o.properties.get_mut("properties") {
                Some(RefOr::T(s)) => {
                    let map = object(s);
                    properties_map(map);
                    map.max_properties = Some(64);
                }
                _ => panic!("NewSession.properties is a map"),
            }
        }
        "Properties" => match object(schema).properties.get_mut("properties") {
            Some(RefOr::T(s)) => properties_map(object(s)),
            _ => panic!("Properties.properties is a map"),
        },
        "RealmSettingsUpdate" => items(object(schema), "property_whitelist", identifier()),
        "NewApiKey" => items(
            object(schema),
            "realms",
            string(Some(1), sessions::MAX_REALM_LEN, REALM_PATTERN),
        ),
        "RevokeSubjectGrants" => items(object(schema), "client_ids", not_blank()),
        "EndSessions" => {
            let o = object(schema);
            items(o, "sids", not_blank());
            items(o, "client_ids", not_blank());
            if let Some(RefOr::T(Schema::Object(ip))) = o.properties.get_mut("ip") {
                ip.max_length = Some(sessions::address::MAX_ADDRESS_FILTER_LEN);
                ip.pattern = Some(address_pattern().to_owned());
            }
            // Either explicit `sids` or filters, never both, never neither. The filters are the
            // listing's that a removal takes.
            let filters: Vec<&str> = sessions::SessionFilters::FIELDS
                .iter()
                .map(|f| f.name)
                .filter(|name| o.properties.contains_key(*name))
                .collect();
            // `window_hours` qualifies `anomaly`: alone it names no sessions.
            let selecting: Vec<&str> = filters
                .iter()
                .copied()
                .filter(|f| *f != "window_hours")
                .collect();
            let by_sids = filters
                .iter()
                .fold(
                    ObjectBuilder::new()
                        .required("sids")
                        .property("sids", Array::builder().min_items(Some(1))),
                    |b, f| b.property(*f, null()),
                )
                .build();
            let by_filter = AllOfBuilder::new()
                .item(Schema::Object(
                    ObjectBuilder::new()
                        .property("sids", Array::builder().max_items(Some(0)))
                        .build(),
                ))
                .item(Schema::AnyOf(
                    selecting
                        .iter()
                        .fold(AnyOfBuilder::new(), |b, f| {
                            b.item(present(&[f], Type::String))
                        })
                        .build(),
                ))
                .build();
            let choice = OneOfBuilder::new()
                .item(Schema::Object(by_sids))
                .item(Schema::AllOf(by_filter))
                .build();
            let base = std::mem::replace(schema, Schema::Object(Object::new()));
            *schema = Schema::AllOf(
                AllOfBuilder::new()
                    .item(base)
                    .item(Schema::OneOf(choice))
                    .build(),
            );
        }
        "NewGrant" => {
            let o = object(schema);
            items(o, "scopes", string(Some(1), 255, SCOPE_PATTERN));
            // Tokens carry their token; a consent carries none.
            let kinds = |k: &[&str]| {
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .enum_values(Some(k.iter().copied()))
            };
            let token = ObjectBuilder::new()
                .required("token")
                .property(
                    "kind",
                    kinds(&["refresh_token", "access_token", "authorization_code"]),
                )
                .property(
                    "token",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::new(Type::String))
                        .min_length(Some(16))
                        .max_length(Some(4096)),
                )
                .build();
            let consent = ObjectBuilder::new()
                .property("kind", kinds(&["consent"]))
                .property("token", null())
                .build();
            let choice = OneOfBuilder::new()
                .item(Schema::Object(token))
                .item(Schema::Object(consent))
                .build();
            let base = std::mem::replace(schema, Schema::Object(Object::new()));
            *schema = Schema::AllOf(
                AllOfBuilder::new()
                    .item(base)
                    .item(Schema::OneOf(choice))
                    .build(),
            );
        }
        _ => {}
    }
}
