package expr

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Object is a JSON object that keeps its keys in insertion order and looks
// them up case-insensitively, as GitHub's expression dictionaries do.
type Object struct {
	keys []string
	vals []any
	idx  map[string]int // lower-cased key → position
}

// NewObject returns an empty Object.
func NewObject() *Object { return &Object{idx: map[string]int{}} }

// Set adds key with value v, or replaces the value of a key equal to it
// ignoring case (the first spelling and position are kept).
func (o *Object) Set(key string, v any) {
	if o.idx == nil {
		o.idx = map[string]int{}
	}
	lk := strings.ToLower(key)
	if i, ok := o.idx[lk]; ok {
		o.vals[i] = v
		return
	}
	o.idx[lk] = len(o.keys)
	o.keys = append(o.keys, key)
	o.vals = append(o.vals, v)
}

// Get returns the value of key, compared without case.
func (o *Object) Get(key string) (any, bool) {
	if o == nil {
		return nil, false
	}
	i, ok := o.idx[strings.ToLower(key)]
	if !ok {
		return nil, false
	}
	return o.vals[i], true
}

// Keys returns the keys in insertion order.
func (o *Object) Keys() []string {
	if o == nil {
		return nil
	}
	return append([]string(nil), o.keys...)
}

// Len returns the number of keys.
func (o *Object) Len() int {
	if o == nil {
		return 0
	}
	return len(o.keys)
}

// MarshalJSON writes the object compactly with its keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	writeJSON(&b, o, "", "")
	return []byte(b.String()), nil
}

// UnmarshalJSON reads a JSON object keeping key order; nested objects
// become *Object, numbers float64.
func (o *Object) UnmarshalJSON(data []byte) error {
	v, err := decodeJSON(string(data))
	if err != nil {
		return err
	}
	obj, ok := v.(*Object)
	if !ok {
		return &json.UnmarshalTypeError{Value: KindOf(v), Type: reflect.TypeOf(o)}
	}
	*o = *obj
	return nil
}

// filtered is the result of a `.*` filter: an array that further property
// accesses apply to element-wise.
type filtered []any

// kind is the type of a value as the expression language sees it.
type kind int

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

func (k kind) String() string {
	return [...]string{"Null", "Boolean", "Number", "String", "Array", "Object"}[k]
}

// norm turns the Go types callers commonly hand in into the canonical ones
// (float64, []any, ...); canonical values pass through unchanged.
func norm(v any) any {
	switch x := v.(type) {
	case nil, bool, float64, string, []any, map[string]any, *Object, filtered:
		return v
	case int:
		return float64(x)
	case int8:
		return float64(x)
	case int16:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case uint:
		return float64(x)
	case uint8:
		return float64(x)
	case uint16:
		return float64(x)
	case uint32:
		return float64(x)
	case uint64:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		return jsNumber(string(x))
	case []string:
		a := make([]any, len(x))
		for i, s := range x {
			a[i] = s
		}
		return a
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return m
	}
	return nil // unsupported types behave as null
}

func kindOf(v any) kind {
	switch norm(v).(type) {
	case bool:
		return kBool
	case float64:
		return kNumber
	case string:
		return kString
	case []any, filtered:
		return kArray
	case map[string]any, *Object:
		return kObject
	}
	return kNull
}

// KindOf names the kind of v: "Null", "Boolean", "Number", "String", "Array" or "Object".
func KindOf(v any) string { return kindOf(v).String() }

// Truthy reports whether v counts as true: null, false, 0, NaN and "" do not.
func Truthy(v any) bool {
	switch x := norm(v).(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// ToString converts v to a string as GitHub does: null is "", numbers keep
// at most 15 decimals, arrays are "Array" and objects "Object".
func ToString(v any) string {
	switch x := norm(v).(type) {
	case nil:
		return ""
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return numberString(x)
	case string:
		return x
	case []any, filtered:
		return "Array"
	}
	return "Object"
}

// numberString formats like JavaScript's (+n.toFixed(15)).toString().
func numberString(f float64) string {
	if f == 0 {
		return "0"
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) >= 1e21 {
		return jsString(f)
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 15, 64), 64)
	if err != nil {
		return jsString(f)
	}
	return jsString(r)
}

// jsString is JavaScript's Number.prototype.toString() for base 10.
func jsString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	case f < 0:
		return "-" + jsString(-f)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	e, _ := strconv.Atoi(exp)
	k, n := len(digits), e+1
	switch {
	case k <= n && n <= 21:
		return digits + strings.Repeat("0", n-k)
	case 0 < n && n <= 21:
		return digits[:n] + "." + digits[n:]
	case -6 < n && n <= 0:
		return "0." + strings.Repeat("0", -n) + digits
	}
	sign := "+"
	if n-1 < 0 {
		sign = "-"
	}
	ex := strconv.Itoa(abs(n - 1))
	if k == 1 {
		return digits + "e" + sign + ex
	}
	return digits[:1] + "." + digits[1:] + "e" + sign + ex
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// toNumber converts v to a number: null 0, booleans 0/1, strings as
// JavaScript's Number(), arrays and objects NaN.
func toNumber(v any) float64 {
	switch x := norm(v).(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		return jsNumber(x)
	}
	return math.NaN()
}

func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}

// jsNumber is JavaScript's Number(string).
func jsNumber(s string) float64 {
	s = strings.TrimFunc(s, isJSSpace)
	if s == "" {
		return 0
	}
	switch s {
	case "Infinity", "+Infinity":
		return math.Inf(1)
	case "-Infinity":
		return math.Inf(-1)
	}
	if len(s) > 2 && s[0] == '0' {
		base := 0
		switch s[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 0 {
			return parseRadix(s[2:], base)
		}
	}
	if !isDecimal(s) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) && f != 0 {
		return math.NaN()
	}
	return f
}

func parseRadix(s string, base int) float64 {
	var f float64
	for _, c := range []byte(s) {
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return math.NaN()
		}
		if d >= base {
			return math.NaN()
		}
		f = f*float64(base) + float64(d)
	}
	return f
}

// isDecimal matches [+-]?(digits[.digits?]|.digits)([eE][+-]?digits)?
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// upper upper-cases s for case-insensitive comparison, leaving the dotless
// ı alone as GitHub does.
func upper(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 'ı' {
			return r
		}
		return toUpperRune(r)
	}, s)
}

func toUpperRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}
	return []rune(strings.ToUpper(string(r)))[0]
}

// coerce brings two values to a common kind for comparison, like
// JavaScript's abstract equality without converting objects to primitives.
func coerce(l, r any) (any, any) {
	lk, rk := kindOf(l), kindOf(r)
	if lk == rk {
		return l, r
	}
	switch lk {
	case kNumber:
		if rk == kString {
			return l, toNumber(r)
		}
	case kString:
		if rk == kNumber {
			return toNumber(l), r
		}
	case kNull, kBool:
		return coerce(toNumber(l), r)
	}
	switch rk {
	case kNull, kBool:
		return coerce(l, toNumber(r))
	}
	return l, r
}

func equals(a, b any) bool {
	l, r := coerce(norm(a), norm(b))
	if kindOf(l) != kindOf(r) {
		return false
	}
	switch x := l.(type) {
	case nil:
		return true
	case float64:
		return x == r.(float64)
	case string:
		return upper(x) == upper(r.(string))
	case bool:
		return x == r.(bool)
	}
	return sameRef(l, r)
}

// sameRef compares arrays and objects by identity.
func sameRef(a, b any) bool {
	switch x := a.(type) {
	case *Object:
		y, ok := b.(*Object)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		return ok && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	case []any:
		y, ok := b.([]any)
		return ok && len(x) == len(y) && cap(x) == cap(y) && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	case filtered:
		y, ok := b.(filtered)
		return ok && len(x) == len(y) && cap(x) == cap(y) && reflect.ValueOf(x).UnsafePointer() == reflect.ValueOf(y).UnsafePointer()
	}
	return false
}

// compare returns -1, 0 or 1, and false when the values are not ordered.
func compare(a, b any) (int, bool) {
	l, r := coerce(norm(a), norm(b))
	if kindOf(l) != kindOf(r) {
		return 0, false
	}
	switch x := l.(type) {
	case float64:
		y := r.(float64)
		if math.IsNaN(x) || math.IsNaN(y) {
			return 0, false
		}
		switch {
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		return strings.Compare(upper(x), upper(r.(string))), true
	case bool:
		y := r.(bool)
		switch {
		case x == y:
			return 0, true
		case y:
			return -1, true
		}
		return 1, true
	}
	return 0, false
}

// ToJSON renders v as GitHub's toJSON does: pretty-printed with two spaces,
// object keys in order; NaN and infinities become null.
func ToJSON(v any) string {
	var b strings.Builder
	writeJSON(&b, v, "\n", "  ")
	return b.String()
}

// compactJSON renders v on one line.
func compactJSON(v any) string {
	var b strings.Builder
	writeJSON(&b, v, "", "")
	return b.String()
}

func writeJSON(b *strings.Builder, v any, nl, indent string) {
	sep := ":"
	if indent != "" {
		sep = ": "
	}
	var walk func(v any, prefix string)
	walk = func(v any, prefix string) {
		inner := prefix + indent
		switch x := norm(v).(type) {
		case nil:
			b.WriteString("null")
		case bool:
			b.WriteString(strconv.FormatBool(x))
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				b.WriteString("null")
			} else {
				b.WriteString(jsString(x))
			}
		case string:
			writeJSONString(b, x)
		case []any, filtered:
			a := asSlice(x)
			if len(a) == 0 {
				b.WriteString("[]")
				return
			}
			b.WriteString("[")
			for i, e := range a {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(nl + inner)
				walk(e, inner)
			}
			b.WriteString(nl + prefix + "]")
		case map[string]any, *Object:
			keys, get := objectEntries(x)
			if len(keys) == 0 {
				b.WriteString("{}")
				return
			}
			b.WriteString("{")
			for i, k := range keys {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(nl + inner)
				writeJSONString(b, k)
				b.WriteString(sep)
				walk(get(k), inner)
			}
			b.WriteString(nl + prefix + "}")
		}
	}
	walk(v, "")
}

// writeJSONString quotes s as JSON.stringify does (no HTML escaping).
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte("0123456789abcdef"[r>>4])
				b.WriteByte("0123456789abcdef"[r&15])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

func asSlice(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case filtered:
		return x
	}
	return nil
}

// objectEntries lists an object's keys (insertion order for *Object, sorted
// for plain maps, whose order Go does not keep) and a getter.
func objectEntries(v any) ([]string, func(string) any) {
	switch x := v.(type) {
	case *Object:
		if x == nil {
			return nil, nil
		}
		return x.keys, func(k string) any { return x.vals[x.idx[strings.ToLower(k)]] }
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys, func(k string) any { return x[k] }
	}
	return nil, nil
}

// lookup finds key in an object ignoring case.
func lookup(v any, key string) (any, bool) {
	switch x := v.(type) {
	case *Object:
		return x.Get(key)
	case map[string]any:
		if r, ok := x[key]; ok {
			return r, true
		}
		keys, get := objectEntries(x)
		for _, k := range keys {
			if strings.EqualFold(k, key) || upper(k) == upper(key) {
				return get(k), true
			}
		}
	}
	return nil, false
}

// objectValues returns an object's values in key order.
func objectValues(v any) []any {
	keys, get := objectEntries(v)
	out := make([]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, get(k))
	}
	return out
}

// decodeJSON parses one JSON value: objects become *Object (order kept),
// numbers float64.
func decodeJSON(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, &json.SyntaxError{Offset: dec.InputOffset()}
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			a := make([]any, 0, 1) // a capacity gives each empty array its own identity
			for dec.More() {
				e, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		case '{':
			o := NewObject()
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				e, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				// An exact duplicate replaces (JSON), one differing in case only
				// is dropped (GitHub's dictionaries keep the first).
				if _, ok := o.Get(k); ok && !seen[k] {
					continue
				}
				seen[k] = true
				o.Set(k, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !math.IsInf(f, 0) && f != 0 {
			return nil, err
		}
		return f, nil
	case string, bool, nil:
		return t, nil
	}
	return nil, &json.SyntaxError{Offset: dec.InputOffset()}
}

// CompactJSON renders v as JSON on one line, object keys in order; NaN and
// infinities become null.
func CompactJSON(v any) string { return compactJSON(v) }

// StandardContexts are the named-values a workflow expression may use.
var StandardContexts = []string{"github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs", "inputs"}
