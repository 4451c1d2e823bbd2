"""mkdocs hook: renders the HTTP API reference from the app's OpenAPI document.

``docs/api.md`` holds the prose and the marker ``<!-- openapi -->``; at build time the
marker is replaced by markdown made from :func:`service.api.openapi.document` (the document
the app serves at ``/openapi.json`` and the tests check against every route), so the
page cannot drift from the code. Nothing is downloaded.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

MARKER = "<!-- openapi -->"
METHODS = ("get", "post", "put", "patch", "delete")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def on_page_markdown(markdown, page, config, files):
    """Replace the marker of the API page with the rendered document."""
    if MARKER not in markdown:
        return markdown
    from service.api.openapi import document

    return markdown.replace(MARKER, render(document()))


def render(doc: dict) -> str:
    """The paths, then the schemas, of an OpenAPI 3.1 document as markdown."""
    out = ["## Routes", "", f"Generated from the OpenAPI {doc['openapi']} document of "
           f"cbserve {doc['info']['version']}.", ""]
    out += _security(doc)
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                out += _operation(method, path, item[method], doc)
    out += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += _schema(name, schema)
    return "\n".join(out)


def _security(doc):
    schemes = doc.get("components", {}).get("securitySchemes", {})
    lines = ["Authentication, where keys are configured: any one of", ""]
    for name, s in schemes.items():
        if s["type"] == "http":
            lines.append(f"- `{name}`: `Authorization: {s['scheme'].title()} <key>`")
        elif s["type"] == "apiKey":
            lines.append(f"- `{name}`: the `{s['name']}` {s['in']}")
    return lines + ["", "A route marked *no key* takes none.", ""]


def _anchor(name):
    return "schema-" + name.lower()


def _type(schema):
    """A short type text for a schema, with links to named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{_anchor(name)})"
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if "array" in kind and "items" in schema:
        items = _type(schema["items"])
        return kind.replace("array", f"array of ({items})" if " or " in items else f"array of {items}")
    return kind


def _constraints(schema):
    notes = []
    for key, text in (("pattern", "matches `{}`"), ("minimum", "≥ {}"), ("maximum", "≤ {}"),
                      ("exclusiveMinimum", "> {}"), ("minLength", "length ≥ {}"),
                      ("minItems", "items ≥ {}")):
        if key in schema:
            notes.append(text.format(schema[key]))
    if schema.get("additionalProperties") is False:
        notes.append("no other keys")
    return notes


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _operation(method, path, op, doc):
    secured = op.get("security", doc.get("security")) != []
    lines = [f"### `{method.upper()} {path}`", "", op.get("summary", "") +
             ("" if secured else " (*no key*)"), ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | constraints |", "|---|---|---|---|"]
        for p in params:
            lines.append(f"| `{p['name']}` | {p['in']} | {_type(p['schema'])} | "
                         f"{_cell(', '.join(_constraints(p['schema'])))} |")
        lines.append("")
    body = op.get("requestBody")
    if body:
        for media, content in body["content"].items():
            lines += [f"Body ({media}): {_type(content['schema'])}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, resp in sorted(op["responses"].items()):
        content = resp.get("content", {})
        kinds = "; ".join(f"{_type(c['schema'])} ({m})" for m, c in content.items())
        lines.append(f"| {status} | {_cell(resp['description'])} | {_cell(kinds)} |")
    return lines + [""]


def _schema(name, schema):
    lines = [f"### {name} {{#{_anchor(name)}}}", ""]
    notes = _constraints(schema)
    if notes:
        lines += ["Object: " + ", ".join(notes) + ".", ""]
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    if props:
        lines += ["| field | type | required | notes |", "|---|---|---|---|"]
        for field, sub in props.items():
            notes = _constraints(sub)
            if "description" in sub:
                notes.insert(0, sub["description"])
            for label, inner in (("fields", sub), ("item fields", sub.get("items", {}))):
                if "properties" in inner:
                    notes.append(label + " " + ", ".join(
                        f"`{k}`: {_type(v)}" for k, v in inner["properties"].items()))
            if isinstance(sub.get("additionalProperties"), dict):
                notes.append("other fields: " + _type(sub["additionalProperties"]))
            lines.append(f"| `{field}` | {_cell(_type(sub))} | "
                         f"{'yes' if field in required else ''} | {_cell('; '.join(notes))} |")
        lines.append("")
    return lines
