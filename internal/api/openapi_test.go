package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// schema is the part of an OpenAPI schema object the sync test reads.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
}

type parameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type content map[string]struct {
	Schema *schema `json:"schema"`
}

type operation struct {
	Parameters  []parameter `json:"parameters"`
	RequestBody *struct {
		Content content `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref     string  `json:"$ref"`
		Content content `json:"content"`
	} `json:"responses"`
}

type document struct {
	OpenAPI    string                           `json:"openapi"`
	Paths      map[string]map[string]*operation `json:"paths"`
	Components struct {
		Schemas    map[string]*schema   `json:"schemas"`
		Parameters map[string]parameter `json:"parameters"`
	} `json:"components"`
}

func loadDoc(t *testing.T) *document {
	t.Helper()
	var doc document
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &doc
}

// TestOpenAPISync fails when a route is registered but not documented or
// documented but not registered, and when documented request and response
// schemas differ from the Go types' JSON field names.
func TestOpenAPISync(t *testing.T) {
	doc := loadDoc(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	registered := map[string]bool{}
	for _, rt := range routes() {
		key := strings.ToLower(rt.method) + " " + rt.path
		registered[key] = true
		op := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if op == nil {
			t.Errorf("%s %s is registered but not documented", rt.method, rt.path)
			continue
		}
		checkOperation(t, doc, rt, op)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !registered[method+" "+path] {
				t.Errorf("%s %s is documented but not registered", strings.ToUpper(method), path)
			}
		}
	}
}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

func checkOperation(t *testing.T, doc *document, rt route, op *operation) {
	name := rt.method + " " + rt.path
	var params []string
	for _, p := range op.Parameters {
		if p.Ref != "" {
			p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
		}
		if p.In == "path" {
			params = append(params, p.Name)
		}
	}
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		if !slices.Contains(params, m[1]) {
			t.Errorf("%s: path parameter %s not documented", name, m[1])
		}
	}
	want := []string{fmt.Sprint(rt.status)}
	if rt.need.kind != public {
		want = append(want, "401")
		// Every token has scope read at least: self routes of scope read
		// refuse nobody authenticated.
		if rt.need.kind == agentOnly || rt.need != self {
			want = append(want, "403")
		}
	}
	if strings.Contains(rt.path, "{id}") {
		want = append(want, "400", "404")
	}
	for _, code := range want {
		if _, ok := op.Responses[code]; !ok {
			t.Errorf("%s: response %s not documented", name, code)
		}
	}
	if rt.out != nil {
		ok := op.Responses[fmt.Sprint(rt.status)]
		checkBody(t, doc, name+" response", ok.Content, reflect.TypeOf(rt.out))
	}
	if rt.in != nil {
		if op.RequestBody == nil {
			t.Errorf("%s: request body not documented", name)
		} else {
			checkBody(t, doc, name+" request", op.RequestBody.Content, reflect.TypeOf(rt.in))
		}
	} else if op.RequestBody != nil && op.RequestBody.Content["application/json"].Schema != nil {
		t.Errorf("%s: documents a JSON request body the handler does not read", name)
	}
}

func checkBody(t *testing.T, doc *document, name string, c content, typ reflect.Type) {
	media, ok := c["application/json"]
	if !ok || media.Schema == nil {
		t.Errorf("%s: no application/json schema", name)
		return
	}
	if want := "#/components/schemas/" + typ.Name(); media.Schema.Ref != want {
		t.Errorf("%s: schema %q, want %q", name, media.Schema.Ref, want)
		return
	}
	checkSchema(t, doc, typ.Name(), media.Schema, typ, nil)
}

var timeType = reflect.TypeFor[time.Time]()

// checkSchema compares a schema's properties with typ's JSON field names,
// following $refs, struct fields, pointers and slices; refs are the $refs
// followed to get here (a recursive schema is checked once).
func checkSchema(t *testing.T, doc *document, where string, s *schema, typ reflect.Type, refs []string) {
	for s != nil && s.Ref != "" {
		if slices.Contains(refs, s.Ref) {
			return
		}
		refs = append(refs[:len(refs):len(refs)], s.Ref)
		s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	if s == nil {
		t.Errorf("%s: dangling $ref", where)
		return
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == timeType:
		if s.Type != "string" || s.Format != "date-time" {
			t.Errorf("%s: a time is documented as %s/%s, want string/date-time", where, s.Type, s.Format)
		}
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() != reflect.Uint8:
		if s.Items == nil {
			t.Errorf("%s: array without items", where)
			return
		}
		checkSchema(t, doc, where+"[]", s.Items, typ.Elem(), refs)
	case typ.Kind() == reflect.Struct:
		fields := jsonFields(typ)
		for prop, ps := range s.Properties {
			ft, ok := fields[prop]
			if !ok {
				t.Errorf("%s: documented property %q is not a field of %s", where, prop, typ)
				continue
			}
			checkSchema(t, doc, where+"."+prop, ps, ft, refs)
		}
		for field := range fields {
			if _, ok := s.Properties[field]; !ok {
				t.Errorf("%s: field %q of %s is not documented", where, field, typ)
			}
		}
	}
}

// jsonFields are a struct's fields by JSON name; an embedded struct
// without a name contributes its own, as encoding/json does.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" && f.Anonymous && f.Type.Kind() == reflect.Struct {
			maps.Copy(fields, jsonFields(f.Type))
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		fields[tag] = f.Type
	}
	return fields
}

// TestOpenAPIRefs finds $refs that point nowhere.
func TestOpenAPIRefs(t *testing.T) {
	var walk func(v any)
	var raw map[string]any
	if err := json.Unmarshal(openapiDoc, &raw); err != nil {
		t.Fatal(err)
	}
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = raw
				for _, p := range parts {
					m, _ := cur.(map[string]any)
					cur = m[p]
				}
				if cur == nil {
					t.Errorf("$ref %s points nowhere", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
}
