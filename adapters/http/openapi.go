package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
)

// The OpenAPI 3.1 document of the routes this package serves, built as a
// Go value so that the compiler checks its structure and the route test
// (openapi_test.go) checks that it and the router agree.

type obj = map[string]any

func ref(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func str() obj            { return obj{"type": "string"} }
func strf(f string) obj   { return obj{"type": "string", "format": f} }
func integer() obj        { return obj{"type": "integer"} }
func boolean() obj        { return obj{"type": "boolean"} }
func number() obj         { return obj{"type": "number"} }
func array(items obj) obj { return obj{"type": "array", "items": items} }
func enum(vs ...string) obj {
	return obj{"type": "string", "enum": vs}
}

func object(required []string, props obj) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func list(item string) obj {
	return object([]string{"items", "next_cursor"}, obj{"items": array(ref(item)), "next_cursor": str()})
}

func jsonBody(schema obj) obj {
	return obj{"required": true, "content": obj{"application/json": obj{"schema": schema}}}
}

func resp(desc string, schema obj) obj {
	r := obj{"description": desc}
	if schema != nil {
		r["content"] = obj{"application/json": obj{"schema": schema}}
	}
	return r
}

func errResp(desc string) obj { return resp(desc, ref("Error")) }

func pathParam(name string) obj {
	return obj{"name": name, "in": "path", "required": true, "schema": str()}
}

func queryParam(name, desc string, schema obj) obj {
	return obj{"name": name, "in": "query", "required": false, "description": desc, "schema": schema}
}

var listParams = []obj{
	queryParam("limit", "Items per page, 1 to 500 (default 50).", obj{"type": "integer", "minimum": 1, "maximum": 500}),
	queryParam("cursor", "The next_cursor of the previous page.", str()),
}

// op is one operation: success status and schema, plus the error statuses
// it may answer.
func op(summary string, ok string, okSchema obj, errs ...string) obj {
	responses := obj{ok: resp(summary, okSchema)}
	for _, e := range append([]string{"401", "500", "503"}, errs...) {
		responses[e] = errResp(errorMeanings[e])
	}
	return obj{"summary": summary, "responses": responses}
}

var errorMeanings = map[string]string{
	"400": "invalid_argument", "401": "unauthenticated", "403": "forbidden", "404": "not_found",
	"409": "conflict", "413": "payload_too_large", "415": "unsupported_media_type", "429": "rate_limited",
	"500": "internal", "503": "unavailable",
}

func with(o obj, kv ...any) obj {
	for i := 0; i+1 < len(kv); i += 2 {
		o[kv[i].(string)] = kv[i+1]
	}
	return o
}

func params(ps ...obj) []obj { return ps }

func openAPIDocument() obj {
	body := func(schema obj) obj { return jsonBody(schema) }
	bodyErrs := []string{"400", "413", "415"}
	eventStream := obj{"text/event-stream": obj{"schema": str()}}
	paths := obj{
		"/healthz": obj{"get": obj{"summary": "Liveness", "security": []obj{}, "responses": obj{"200": resp("alive", obj{"type": "object"})}}},
		"/readyz": obj{"get": obj{"summary": "Readiness: store, bus and projections", "security": []obj{},
			"responses": obj{"200": resp("ready", obj{"type": "object"}), "503": resp("not ready, with reasons", obj{"type": "object"})}}},
		"/metrics": obj{"get": obj{"summary": "Prometheus metrics", "security": []obj{},
			"responses": obj{"200": obj{"description": "text format", "content": obj{"text/plain": obj{"schema": str()}}}}}},
		"/openapi.json": obj{"get": obj{"summary": "This document", "security": []obj{},
			"responses": obj{"200": resp("OpenAPI 3.1", obj{"type": "object"})}}},

		"/api/v1/tokens": obj{
			"post": with(op("Issue a token (admins); the secret is shown once", "201", ref("NewToken"), append(bodyErrs, "403")...),
				"requestBody", body(object([]string{"name"}, obj{"name": str(), "admin": boolean(), "expires_at": strf("date-time")}))),
			"get": with(op("List tokens (admins), never their secrets", "200", list("Token"), "400", "403"), "parameters", listParams),
		},
		"/api/v1/tokens/{token_id}": obj{
			"parameters": params(pathParam("token_id")),
			"delete":     op("Revoke a token (admins)", "204", nil, "403", "404", "409"),
		},
		"/api/v1/stream-tokens": obj{
			"post": with(op("Mint a short-lived token for one SSE feed", "201", object([]string{"token", "expires_at"}, obj{"token": str(), "expires_at": strf("date-time")}), append(bodyErrs, "404")...),
				"requestBody", body(object(nil, obj{"scan_id": str()}))),
		},
		"/api/v1/projects": obj{
			"post": with(op("Create a project; the caller becomes its owner", "201", ref("Project"), bodyErrs...),
				"requestBody", body(object([]string{"name"}, obj{"name": str(), "description": str()}))),
			"get": with(op("List the projects the caller can see", "200", list("Project"), "400"), "parameters", listParams),
		},
		"/api/v1/projects/{project_id}": obj{
			"parameters": params(pathParam("project_id")),
			"get":        op("Get a project", "200", ref("Project"), "404"),
		},
		"/api/v1/projects/{project_id}/archive": obj{
			"parameters": params(pathParam("project_id")),
			"post":       op("Archive a project (owner); it takes no new scans", "200", ref("Project"), "403", "404"),
		},
		"/api/v1/projects/{project_id}/members": obj{
			"parameters": params(pathParam("project_id")),
			"get":        with(op("List members", "200", list("Member"), "400", "404"), "parameters", listParams),
			"post": with(op("Grant or change a role (owner)", "200", ref("Member"), append(bodyErrs, "403", "404", "409")...),
				"requestBody", body(object([]string{"principal", "role"}, obj{"principal": str(), "role": enum("viewer", "editor", "owner")}))),
		},
		"/api/v1/projects/{project_id}/members/{principal}": obj{
			"parameters": params(pathParam("project_id"), pathParam("principal")),
			"delete":     op("Remove a member (owner, or the member itself)", "204", nil, "403", "404", "409"),
		},
		"/api/v1/projects/{project_id}/repositories": obj{
			"parameters": params(pathParam("project_id")),
			"post": with(op("Add a repository (editor)", "201", ref("Repository"), append(bodyErrs, "403", "404", "409")...),
				"requestBody", body(object([]string{"name", "source"}, obj{"name": str(), "source": ref("Source")}))),
			"get": with(op("List a project's repositories", "200", list("Repository"), "400", "404"), "parameters", listParams),
		},
		"/api/v1/repositories/{repository_id}": obj{
			"parameters": params(pathParam("repository_id")),
			"get":        op("Get a repository", "200", ref("Repository"), "404"),
			"delete":     op("Remove a repository (editor); its history stays", "204", nil, "403", "404"),
		},
		"/api/v1/repositories/{repository_id}/snapshots": obj{
			"parameters": params(pathParam("repository_id")),
			"get":        with(op("List snapshots", "200", list("Snapshot"), "400", "404"), "parameters", listParams),
			"post":       snapshotUpload(),
		},
		"/api/v1/snapshots/{snapshot_id}": obj{
			"parameters": params(pathParam("snapshot_id")),
			"get":        op("Get a snapshot", "200", ref("Snapshot"), "404"),
		},
		"/api/v1/repositories/{repository_id}/threat-profile": obj{
			"parameters": params(pathParam("repository_id")),
			"put": with(op("Define a new threat-profile version (editor)", "200", ref("ThreatProfile"), append(bodyErrs, "403", "404", "409")...),
				"requestBody", body(ref("ThreatProfileInput"))),
			"get": op("The current threat profile (version 0: the default)", "200", ref("ThreatProfile"), "404"),
		},
		"/api/v1/repositories/{repository_id}/scans": obj{
			"parameters": params(pathParam("repository_id")),
			"post": with(op("Request a scan (editor)", "202", ref("Scan"), append(bodyErrs, "403", "404", "409")...),
				"requestBody", body(object(nil, obj{"snapshot_id": str(), "engines": array(str())}))),
			"get": with(op("List scans, newest first", "200", list("Scan"), "400", "404"), "parameters", listParams),
		},
		"/api/v1/scans/{scan_id}": obj{
			"parameters": params(pathParam("scan_id")),
			"get":        op("Get a scan", "200", ref("Scan"), "404"),
		},
		"/api/v1/scans/{scan_id}/cancel": obj{
			"parameters": params(pathParam("scan_id")),
			"post":       op("Cancel a scan (editor); 409 when finished", "202", ref("Scan"), "403", "404", "409"),
		},
		"/api/v1/scans/{scan_id}/findings": obj{
			"parameters": params(pathParam("scan_id")),
			"get": with(op("List findings, most severe first", "200", list("Finding"), "400", "404"), "parameters", append([]obj{
				queryParam("severity", "One value or a comma-separated list.", str()),
				queryParam("triage", "One value or a comma-separated list.", str()),
				queryParam("diff", "new, unchanged or reopened; or a comma-separated list.", str()),
				queryParam("rule", "rule_id values, comma-separated.", str()),
				queryParam("file", "file values, comma-separated.", str()),
			}, listParams...)),
		},
		"/api/v1/scans/{scan_id}/events": obj{
			"parameters": params(pathParam("scan_id")),
			"get": with(op("The scan stream's events: a JSON list, or a live feed with Accept: text/event-stream", "200", list("Event"), "400", "404", "429"),
				"parameters", append([]obj{
					queryParam("after", "SSE: resume after this stream version (or send Last-Event-ID).", integer()),
					queryParam("access_token", "SSE only: a stream token.", str()),
				}, listParams...)),
		},
		"/api/v1/scans/{scan_id}/replay": obj{
			"parameters": params(pathParam("scan_id")),
			"get": with(op("The scan as it was at a version or time", "200", ref("Replay"), "400", "404"),
				"parameters", []obj{queryParam("version", "Fold up to this stream version.", integer()),
					queryParam("at", "Fold up to this time (RFC 3339).", strf("date-time"))}),
		},
		"/api/v1/scans/{scan_id}/diff": obj{
			"parameters": params(pathParam("scan_id")),
			"get": op("The scan's difference to its base scan (base_scan_id \"\" for a first scan); 409 until the scan is completed and classified",
				"200", ref("Diff"), "404", "409"),
		},
		"/api/v1/scans/{scan_id}/sarif": obj{
			"parameters": params(pathParam("scan_id")),
			"get":        sarifExport(),
			"post": with(op("Upload a SARIF 2.1.0 document to a scan requested with engines [\"sarif-upload\"] (editor): its results become the scan's findings and the scan completes",
				"202", ref("Scan"), append(bodyErrs, "403", "404", "409")...),
				"requestBody", obj{"required": true, "content": obj{
					SARIFMediaType:     obj{"schema": obj{"type": "object"}},
					"application/json": obj{"schema": obj{"type": "object"}}}}),
		},
		"/api/v1/repositories/{repository_id}/issues": obj{
			"parameters": params(pathParam("repository_id")),
			"get": with(op("List a repository's issues, most severe first", "200", list("Issue"), "400", "404"), "parameters", append([]obj{
				queryParam("triage", "One value or a comma-separated list.", str()),
				queryParam("severity", "One value or a comma-separated list.", str()),
				queryParam("state", "open or fixed; or a comma-separated list.", str()),
			}, listParams...)),
		},
		"/api/v1/issues/{issue_id}": obj{
			"parameters": params(pathParam("issue_id")),
			"get":        op("Get an issue with its history", "200", ref("Issue"), "404"),
		},
		"/api/v1/issues/{issue_id}/triage": obj{
			"parameters": params(pathParam("issue_id")),
			"post": with(op("Triage an issue (editor); expires_at only, and then required, with accepted_risk", "200", ref("Issue"),
				append(bodyErrs, "403", "404", "409")...),
				"requestBody", body(object([]string{"status"}, obj{"status": triageEnum(), "note": str(), "expires_at": strf("date-time")}))),
		},
		"/api/v1/dashboard": obj{"get": op("Summary over the caller's projects", "200", ref("Dashboard"))},
		"/api/v1/events": obj{
			"get": with(op("Activity across the caller's projects: a JSON list, or a live feed with Accept: text/event-stream", "200", list("Event"), "400", "429"),
				"parameters", append([]obj{
					queryParam("after", "SSE: resume after this opaque cursor (or send Last-Event-ID).", str()),
					queryParam("access_token", "SSE only: a stream token.", str()),
				}, listParams...)),
		},
		"/api/v1/audit/verify": obj{
			"get": with(op("Verify a stream's hash chain", "200", object([]string{"stream", "events", "valid", "broken_at"},
				obj{"stream": str(), "events": integer(), "valid": boolean(), "broken_at": obj{"type": []string{"integer", "null"}}}), "400", "404"),
				"parameters", []obj{with(queryParam("stream", "A stream ID such as scan-<id>.", str()), "required", true)}),
		},
	}
	for _, p := range []string{"/api/v1/scans/{scan_id}/events", "/api/v1/events"} {
		get := paths[p].(obj)["get"].(obj)
		get["responses"].(obj)["200"].(obj)["content"].(obj)["text/event-stream"] = eventStream["text/event-stream"]
	}
	counts := object(nil, obj{"critical": integer(), "high": integer(), "medium": integer(), "low": integer(), "info": integer()})
	schemas := obj{
		"Error": object([]string{"error"}, obj{"error": object([]string{"code", "message"}, obj{
			"code": enum("invalid_argument", "unauthenticated", "forbidden", "not_found", "conflict", "payload_too_large",
				"unsupported_media_type", "rate_limited", "internal", "unavailable"),
			"message": str(), "field": str()})}),
		"Token": object(nil, obj{"id": str(), "name": str(), "principal": str(), "admin": boolean(), "expires_at": str(),
			"created_at": str(), "revoked": boolean()}),
		"NewToken": object(nil, obj{"id": str(), "name": str(), "principal": str(), "admin": boolean(), "expires_at": str(), "token": str()}),
		"Project":  object(nil, obj{"id": str(), "name": str(), "description": str(), "created_at": strf("date-time"), "archived": boolean()}),
		"Member":   object(nil, obj{"project_id": str(), "principal": str(), "role": enum("viewer", "editor", "owner"), "granted_at": strf("date-time")}),
		"Source":   object([]string{"kind"}, obj{"kind": enum("archive", "git"), "url": str(), "ref": str()}),
		"Repository": object(nil, obj{"id": str(), "project_id": str(), "name": str(), "source": ref("Source"),
			"created_at": strf("date-time"), "latest_snapshot_id": str(), "removed": boolean()}),
		"Snapshot": object(nil, obj{"id": str(), "repository_id": str(), "status": enum("pending", "captured", "failed"), "ref": str(),
			"digest": str(), "size_bytes": integer(), "file_count": integer(), "commit": str(), "captured_at": str(), "error": str()}),
		"LLMBudget": object(nil, obj{"max_tokens": integer(), "max_cost_usd": number(), "max_requests": integer(), "max_concurrent": integer()}),
		"ThreatProfileInput": object(nil, obj{"name": str(), "description": str(),
			"categories": array(enum("secrets", "injection", "crypto", "config")), "min_severity": enum("critical", "high", "medium", "low", "info"),
			"include": array(str()), "exclude": array(str()), "engines": array(str()), "llm_budget": ref("LLMBudget")}),
		"ThreatProfile": object(nil, obj{"name": str(), "description": str(),
			"categories": array(enum("secrets", "injection", "crypto", "config")), "min_severity": enum("critical", "high", "medium", "low", "info"),
			"include": array(str()), "exclude": array(str()), "engines": array(str()), "llm_budget": ref("LLMBudget"), "version": integer()}),
		"Scan": object(nil, obj{"id": str(), "project_id": str(), "repository_id": str(), "snapshot_id": str(), "partial": boolean(),
			"status": enum("requested", "claimed", "running", "completed", "failed", "cancelled", "timed_out"), "phase": str(),
			"progress": obj{"type": "integer", "minimum": 0, "maximum": 100}, "engines": array(str()), "counts": counts,
			"llm_usage":    object(nil, obj{"input_tokens": integer(), "output_tokens": integer(), "cost_usd": number()}),
			"requested_at": str(), "started_at": str(), "finished_at": str(), "error": str()}),
		"Finding": object(nil, obj{"id": str(), "scan_id": str(), "issue_id": str(), "fingerprint": str(), "rule_id": str(), "title": str(),
			"severity": enum("critical", "high", "medium", "low", "info"), "cwe": str(), "engine": str(), "file": str(),
			"start_line": integer(), "end_line": integer(), "snippet": str(), "message": str(), "remediation": str(),
			"confidence": number(), "diff": str(), "triage": str()}),
		"Diff": object([]string{"base_scan_id", "new", "reopened", "fixed", "unchanged"}, obj{"base_scan_id": str(),
			"new": array(ref("Finding")), "reopened": array(ref("Finding")), "fixed": array(ref("Finding")), "unchanged": integer()}),
		"Issue": object(nil, obj{"id": str(), "repository_id": str(), "fingerprint": str(), "rule_id": str(), "title": str(),
			"severity": enum("critical", "high", "medium", "low", "info"), "file": str(), "triage": triageEnum(),
			"expires_at": strf("date-time"), "first_seen_scan_id": str(), "last_seen_scan_id": str(), "state": enum("open", "fixed"),
			"history": array(ref("IssueHistory"))}),
		"IssueHistory": object(nil, obj{"at": strf("date-time"), "actor": str(), "state": enum("open", "fixed"), "triage": triageEnum(),
			"note": str(), "scan_id": str(), "expires_at": strf("date-time")}),
		"Event": object(nil, obj{"stream_id": str(), "version": integer(), "type": str(), "recorded_at": strf("date-time"),
			"actor": str(), "data": obj{"type": "object"}}),
		"Replay": object([]string{"as_of", "scan", "events"}, obj{
			"as_of": object(nil, obj{"version": integer(), "recorded_at": strf("date-time")}), "scan": ref("Scan"), "events": array(ref("Event"))}),
		"Dashboard": object(nil, obj{"projects": integer(), "repositories": integer(),
			"scans": obj{"type": "object", "additionalProperties": integer()}, "open_issues": obj{"type": "object", "additionalProperties": integer()},
			"recent_scans": array(ref("Scan"))}),
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{"title": "Vega API", "version": "1",
			"description": "Event-sourced application-security scanning. Errors: the status and {\"error\": {\"code\", \"message\"}}."},
		"servers":    []obj{{"url": "/"}},
		"security":   []obj{{"bearer": []string{}}},
		"paths":      paths,
		"components": obj{"schemas": schemas, "securitySchemes": obj{"bearer": obj{"type": "http", "scheme": "bearer"}}},
	}
}

func triageEnum() obj {
	return enum("open", "under_review", "false_positive", "wont_fix", "accepted_risk")
}

// sarifExport is GET /scans/{id}/sarif: a SARIF document, not JSON of
// this API.
func sarifExport() obj {
	o := op("The scan's findings as SARIF 2.1.0, with baselineState once the scan is classified", "200", nil, "404")
	o["responses"].(obj)["200"] = obj{"description": "SARIF 2.1.0", "content": obj{SARIFMediaType: obj{"schema": obj{"type": "object"}}}}
	return o
}

// snapshotUpload is POST /repositories/{id}/snapshots: an archive (201,
// captured) or, for a git repository, {"ref"} (202, pending).
func snapshotUpload() obj {
	binary := obj{"schema": obj{"type": "string", "contentMediaType": "application/octet-stream"}}
	o := op("Upload an archive snapshot (editor; 201, captured), or request a git capture with {\"ref\"} (202, pending). "+
		"A request of the other repository kind is 400 (source.kind); an invalid archive 400 (archive).",
		"201", ref("Snapshot"), "400", "403", "404", "409", "413", "415")
	o["responses"].(obj)["202"] = resp("git capture requested: the snapshot is pending", ref("Snapshot"))
	o["requestBody"] = obj{"required": false, "content": obj{
		"application/gzip":   binary,
		"application/x-gzip": binary,
		"application/zip":    binary,
		"application/json":   obj{"schema": object(nil, obj{"ref": str()})},
	}}
	return o
}

// openAPIJSON is the document, encoded once.
var openAPIJSON = func() []byte {
	b, err := json.MarshalIndent(openAPIDocument(), "", "  ")
	if err != nil {
		panic("httpapi: encode openapi document: " + err.Error())
	}
	return b
}()

// OpenAPI returns the OpenAPI 3.1 document served at /openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIJSON...) }

// OpenAPIRoutes returns "METHOD path" for every operation of the document.
func OpenAPIRoutes() []string {
	var out []string
	for path, item := range openAPIDocument()["paths"].(obj) {
		for method := range item.(obj) {
			if method == "parameters" {
				continue
			}
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	return out
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIJSON)
}
