// The docs page's "try it" form: reads the OpenAPI document, lets a person pick an operation,
// fill its parameters and body, and send it to this server with their API key. Nothing is
// stored; the key stays in the page.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const METHODS = ["get", "put", "post", "patch", "delete"];
  let doc = null;
  let ops = [];

  // A schema with its $ref followed (one level of allOf merged), for placeholders and samples.
  function resolve(schema) {
    if (!schema) return {};
    if (schema.$ref) {
      const name = schema.$ref.split("/").pop();
      return resolve(doc.components.schemas[name]);
    }
    if (schema.allOf) {
      const merged = { properties: {}, required: [] };
      for (const part of schema.allOf) {
        const r = resolve(part);
        Object.assign(merged.properties, r.properties || {});
        merged.required = merged.required.concat(r.required || []);
      }
      return merged;
    }
    return schema;
  }

  function typeOf(schema) {
    const t = schema.type;
    return Array.isArray(t) ? t.find((x) => x !== "null") : t;
  }

  // A sample value for a schema: its default, its first allowed value, or an empty one.
  function sample(schema, depth) {
    const s = resolve(schema);
    if (s.default !== undefined) return s.default;
    if (s.enum) return s.enum[0];
    if (s.oneOf) return sample(s.oneOf[0], depth);
    switch (typeOf(s)) {
      case "object": {
        const out = {};
        if (depth > 3) return out;
        for (const name of s.required || []) {
          out[name] = sample((s.properties || {})[name], depth + 1);
        }
        return out;
      }
      case "array":
        return [];
      case "integer":
      case "number":
        return s.minimum !== undefined ? s.minimum : 0;
      case "boolean":
        return false;
      default:
        return s.format === "date-time" ? new Date(Date.now() + 3600e3).toISOString() : "";
    }
  }

  // What a parameter accepts, as a placeholder.
  function hint(schema) {
    const s = resolve(schema || {});
    const parts = [typeOf(s) || "value"];
    if (s.minimum !== undefined || s.maximum !== undefined) {
      parts.push(`${s.minimum ?? ""}..${s.maximum ?? ""}`);
    }
    if (s.maxLength !== undefined) parts.push(`≤ ${s.maxLength} chars`);
    if (s.enum) parts.push(s.enum.join(" | "));
    return parts.join(", ");
  }

  function field(param) {
    const label = document.createElement("label");
    const required = param.required ? " (required)" : "";
    label.textContent = `${param.name} — ${param.in}${required} `;
    const input = document.createElement("input");
    input.dataset.name = param.name;
    input.dataset.in = param.in;
    input.placeholder = hint(param.schema);
    input.size = 40;
    if (param.schema && param.schema.pattern) input.title = `pattern ${param.schema.pattern}`;
    if (param.description) label.title = param.description;
    label.appendChild(input);
    const p = document.createElement("p");
    p.appendChild(label);
    return p;
  }

  function show(index) {
    const op = ops[index];
    const params = $("params");
    params.replaceChildren(...(op.operation.parameters || []).map(field));
    const body = op.operation.requestBody;
    $("body-label").hidden = !body;
    if (body) {
      const json = body.content["application/json"] || Object.values(body.content)[0];
      $("body").value = JSON.stringify(sample(json.schema, 0), null, 2);
    }
    $("result").textContent = "";
  }

  async function send() {
    const op = ops[$("op").value];
    let path = op.path;
    const query = new URLSearchParams();
    const headers = {};
    for (const input of $("params").querySelectorAll("input")) {
      const value = input.value;
      if (input.dataset.in === "path") {
        path = path.replace(`{${input.dataset.name}}`, encodeURIComponent(value));
      } else if (value !== "" && input.dataset.in === "query") {
        query.append(input.dataset.name, value);
      } else if (value !== "" && input.dataset.in === "header") {
        headers[input.dataset.name] = value;
      }
    }
    const key = $("key").value.trim();
    if (key && op.operation.security) headers.Authorization = `Bearer ${key}`;
    const init = { method: op.method.toUpperCase(), headers };
    if (op.operation.requestBody) {
      headers["Content-Type"] = "application/json";
      init.body = $("body").value;
    }
    const url = path + (query.toString() ? `?${query}` : "");
    $("result").textContent = `${init.method} ${url} …`;
    try {
      const response = await fetch(url, init);
      const text = await response.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch (_) {
        // Not JSON: shown as it came.
      }
      $("result").textContent = `${init.method} ${url}\n${response.status} ${response.statusText}\n\n${shown}`;
    } catch (e) {
      $("result").textContent = `${init.method} ${url}\nfailed: ${e}`;
    }
  }

  async function start() {
    doc = await (await fetch("/api/v1/openapi.json")).json();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        if (item[method]) ops.push({ path, method, operation: item[method] });
      }
    }
    const select = $("op");
    ops.forEach((op, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = `${op.method.toUpperCase()} ${op.path}`;
      select.appendChild(option);
    });
    select.addEventListener("change", () => show(select.value));
    $("send").addEventListener("click", send);
    for (const button of document.querySelectorAll("button[data-try]")) {
      button.addEventListener("click", () => {
        const [method, path] = button.dataset.try.split(" ");
        const i = ops.findIndex((o) => o.method === method.toLowerCase() && o.path === path);
        if (i >= 0) {
          select.value = String(i);
          show(i);
          $("try").scrollIntoView();
        }
      });
    }
    $("try").hidden = false;
    show(0);
  }

  start();
})();
