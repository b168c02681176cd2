package forge

import (
	"encoding/json"
	"strconv"
)

// obj reads a decoded JSON object leniently: a missing key or a value of
// another type reads as the zero value, so odd payloads never panic.
type obj map[string]any

func (o obj) o(key string) obj {
	m, _ := o[key].(map[string]any)
	return m
}

func (o obj) s(key string) string {
	s, _ := o[key].(string)
	return s
}

func (o obj) b(key string) bool {
	b, _ := o[key].(bool)
	return b
}

func (o obj) a(key string) []any {
	a, _ := o[key].([]any)
	return a
}

func (o obj) has(key string) bool {
	_, ok := o[key]
	return ok
}

// i reads an integer number (JSON numbers decode as float64).
func (o obj) i(key string) int {
	f, ok := o[key].(float64)
	if !ok || f != f || f > 1<<53 || f < -(1<<53) {
		return 0
	}
	return int(f)
}

// strings reads an array of strings, skipping other values.
func (o obj) strings(key string) []string {
	var out []string
	for _, v := range o.a(key) {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// text renders a JSON scalar as workflow inputs see it: strings as they are,
// numbers and booleans as written in JSON, anything else as JSON.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
