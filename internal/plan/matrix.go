package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Combo is one combination of a matrix: its keys in order and their values
// (plain JSON-like values: nil, bool, float64, string, []any, map[string]any).
type Combo struct {
	Keys   []string       `json:"keys"`
	Values map[string]any `json:"values"`
}

// Suffix is the " (v1, v2)" GitHub adds to a matrix job's name.
func (c Combo) Suffix() string {
	if len(c.Keys) == 0 {
		return ""
	}
	parts := make([]string, 0, len(c.Keys))
	for _, k := range c.Keys {
		parts = append(parts, displayValue(c.Values[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func displayValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var insertRe = regexp.MustCompile(`^\$\{\{\s*insert\s*\}\}$`)

// Evaluator turns a scalar string as written (which may hold ${{ }}) into a
// value. Plain strings come back as they are.
type Evaluator func(s string) (any, error)

// Literal is an Evaluator for static matrices: it refuses expressions.
func Literal(s string) (any, error) {
	if strings.Contains(s, "${{") {
		return nil, errs.E("matrix", errs.Invalid, "expression needs a runtime context: %s", s)
	}
	return s, nil
}

// HasExpressions reports whether any scalar under n holds ${{.
func HasExpressions(n *yaml.Node) bool {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "${{")
	}
	for _, c := range n.Content {
		if HasExpressions(c) {
			return true
		}
	}
	return false
}

// ExpandMatrix expands a strategy.matrix node with GitHub's rules: the
// cartesian product of the vectors in key order, minus exclude entries
// (partial match), then include entries added to every combination they
// match without overwriting an original value, or appended as new ones.
func ExpandMatrix(n *yaml.Node, eval Evaluator) ([]Combo, error) {
	if n == nil {
		return nil, nil
	}
	var keys []string
	var vals map[string]any
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := eval(n.Value)
		if err != nil {
			return nil, err
		}
		obj, order, err := asObject(v)
		if err != nil {
			return nil, errs.E("matrix", errs.Invalid, "line %d: matrix expression must yield an object: %v", n.Line, err)
		}
		keys, vals = order, obj
	case yaml.MappingNode:
		v, err := nodeValue(n, eval)
		if err != nil {
			return nil, err
		}
		o := v.(orderedObject)
		keys, vals = o.keys, o.m
	default:
		return nil, errs.E("matrix", errs.Invalid, "line %d: matrix must be a mapping or an expression", n.Line)
	}
	return expand(keys, vals)
}

func expand(keys []string, vals map[string]any) ([]Combo, error) {
	dims, include, exclude, err := splitMatrixKeys(keys, vals)
	if err != nil {
		return nil, err
	}
	vecs, err := vectors(dims, vals, len(exclude) > 0)
	if err != nil {
		return nil, err
	}
	combos := product(dims, vecs)
	if combos, err = applyExclude(combos, exclude); err != nil {
		return nil, err
	}
	if combos, err = applyInclude(combos, dims, include); err != nil {
		return nil, err
	}
	if len(combos) > MaxMatrixJobs {
		return nil, errs.Wrap("matrix", errs.Invalid, &MatrixTooLarge{Jobs: int64(len(combos))})
	}
	return combos, nil
}

// splitMatrixKeys sorts a matrix's keys into its dimensions (in order) and
// its include and exclude lists.
func splitMatrixKeys(keys []string, vals map[string]any) (dims []string, include, exclude []any, err error) {
	for _, k := range keys {
		switch strings.ToLower(k) {
		case "include":
			if include, err = asList(vals[k], "include"); err != nil {
				return nil, nil, nil, err
			}
		case "exclude":
			if exclude, err = asList(vals[k], "exclude"); err != nil {
				return nil, nil, nil, err
			}
		default:
			dims = append(dims, k)
		}
	}
	return dims, include, exclude, nil
}

// product is the cartesian product of the vectors, in dimension order;
// none without dimensions.
func product(dims []string, vecs [][]any) []Combo {
	if len(dims) == 0 {
		return nil
	}
	combos := []Combo{{Values: map[string]any{}}}
	for i, d := range dims {
		vec := vecs[i]
		next := make([]Combo, 0, len(combos)*len(vec))
		for _, c := range combos {
			for _, v := range vec {
				nc := Combo{Keys: append(append([]string{}, c.Keys...), d), Values: copyMap(c.Values)}
				nc.Values[d] = Plain(v)
				next = append(next, nc)
			}
		}
		combos = next
	}
	return combos
}

// applyExclude drops every combination an exclude entry matches (partly).
func applyExclude(combos []Combo, exclude []any) ([]Combo, error) {
	for _, e := range exclude {
		ex, order, err := asObject(e)
		if err != nil {
			return nil, errs.E("matrix", errs.Invalid, "exclude entries must be objects")
		}
		ex, _ = Plain(ex).(map[string]any)
		kept := combos[:0]
		for _, c := range combos {
			if !matches(c.Values, ex, order) {
				kept = append(kept, c)
			}
		}
		combos = kept
	}
	return combos, nil
}

// applyInclude adds each include entry to every original combination whose
// dimensions it matches, without overwriting a dimension's value, or
// appends it as a combination of its own when it matches none.
func applyInclude(combos []Combo, dims []string, include []any) ([]Combo, error) {
	original := len(combos)
	isDim := map[string]bool{}
	for _, d := range dims {
		isDim[d] = true
	}
	for _, in := range include {
		inc, order, err := asObject(in)
		if err != nil {
			return nil, errs.E("matrix", errs.Invalid, "include entries must be objects")
		}
		matched := false
		for i := 0; i < original; i++ {
			if includeInto(&combos[i], inc, order, isDim) {
				matched = true
			}
		}
		if !matched {
			nc := Combo{Values: map[string]any{}}
			for _, k := range order {
				nc.Keys = append(nc.Keys, k)
				nc.Values[k] = Plain(inc[k])
			}
			combos = append(combos, nc)
		}
	}
	return combos, nil
}

// includeInto adds an include entry's other keys to c when the entry's
// dimension values match c's, and says whether they did.
func includeInto(c *Combo, inc map[string]any, order []string, isDim map[string]bool) bool {
	for _, k := range order {
		if isDim[k] && !looseEqual(c.Values[k], Plain(inc[k])) {
			return false
		}
	}
	for _, k := range order {
		if isDim[k] {
			continue
		}
		if _, had := c.Values[k]; !had {
			c.Keys = append(c.Keys, k)
		}
		c.Values[k] = Plain(inc[k])
	}
	return true
}

// MaxMatrixJobs is how many jobs one matrix may make (GitHub's limit).
const MaxMatrixJobs = 256

// maxMatrixProduct bounds the combinations built before exclude entries
// take some away: a matrix is never expanded just to be counted.
const maxMatrixProduct = 64 * MaxMatrixJobs

// MatrixTooLarge refuses a matrix of more than MaxMatrixJobs jobs.
type MatrixTooLarge struct {
	Jobs int64
	// BeforeExclude: Jobs counts the vectors' combinations, over
	// maxMatrixProduct, before exclude entries.
	BeforeExclude bool
}

func (e *MatrixTooLarge) Error() string {
	n := strconv.FormatInt(e.Jobs, 10)
	if e.Jobs == math.MaxInt64 {
		n = "more than " + n
	}
	if e.BeforeExclude {
		return fmt.Sprintf("the matrix's vectors make %s combinations before exclude; at most %d are expanded, and a matrix may make %d jobs",
			n, maxMatrixProduct, MaxMatrixJobs)
	}
	return fmt.Sprintf("the matrix makes %s jobs; a matrix may make at most %d", n, MaxMatrixJobs)
}

// vectors returns the matrix's vectors in dims order once their product
// is known to be within bounds: MaxMatrixJobs, or maxMatrixProduct when
// exclude entries may take combinations away.
func vectors(dims []string, vals map[string]any, excluding bool) ([][]any, error) {
	vecs := make([][]any, 0, len(dims))
	product := int64(1)
	for _, d := range dims {
		vec, err := asList(vals[d], d)
		if err != nil {
			return nil, err
		}
		if len(vec) == 0 {
			return nil, errs.E("matrix", errs.Invalid, "matrix vector %q does not contain any values", d)
		}
		if product > math.MaxInt64/int64(len(vec)) {
			product = math.MaxInt64 // saturated
		} else {
			product *= int64(len(vec))
		}
		vecs = append(vecs, vec)
	}
	switch {
	case product > maxMatrixProduct:
		return nil, errs.Wrap("matrix", errs.Invalid, &MatrixTooLarge{Jobs: product, BeforeExclude: excluding})
	case product > MaxMatrixJobs && !excluding:
		return nil, errs.Wrap("matrix", errs.Invalid, &MatrixTooLarge{Jobs: product})
	}
	return vecs, nil
}

func matches(c, part map[string]any, order []string) bool {
	for _, k := range order {
		v, ok := c[k]
		if !ok {
			return false
		}
		if pm, ok := part[k].(map[string]any); ok {
			cm, ok := v.(map[string]any)
			if !ok {
				return false
			}
			if !matches(cm, pm, sortedKeys(pm)) {
				return false
			}
			continue
		}
		if !looseEqual(v, part[k]) {
			return false
		}
	}
	return true
}

func looseEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.EqualFold(x, y)
		}
	case float64:
		if y, ok := b.(float64); ok {
			return x == y
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func copyMap(m map[string]any) map[string]any {
	n := make(map[string]any, len(m)+1)
	for k, v := range m {
		n[k] = v
	}
	return n
}

func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func asList(v any, name string) ([]any, error) {
	if l, ok := v.([]any); ok {
		return l, nil
	}
	if l, ok := Plain(v).([]any); ok {
		return l, nil
	}
	return nil, errs.E("matrix", errs.Invalid, "matrix %q must be a list, got %s", name, displayValue(v))
}

// asObject returns an object's map and its keys in order.
func asObject(v any) (map[string]any, []string, error) {
	if o, ok := v.(orderedObject); ok {
		return o.m, o.keys, nil
	}
	keys, ok := keyOrder(v)
	p := Plain(v)
	m, isMap := p.(map[string]any)
	if !isMap {
		return nil, nil, fmt.Errorf("not an object: %s", displayValue(p))
	}
	if !ok {
		keys = sortedKeys(m)
	}
	return m, keys, nil
}

// orderedObject is a mapping read from YAML, keys in file order.
type orderedObject struct {
	keys []string
	m    map[string]any
}

// nodeValue converts a YAML node to a plain value, evaluating scalars that
// are strings with eval. Mappings keep their key order for the top level of
// include/exclude entries.
func nodeValue(n *yaml.Node, eval Evaluator) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], eval)
	case yaml.AliasNode:
		return nodeValue(n.Alias, eval)
	case yaml.SequenceNode:
		return sequenceValue(n, eval)
	case yaml.MappingNode:
		return mappingValue(n, eval)
	}
	return scalarValue(n, eval)
}

// sequenceValue is a sequence's items; an item that is one expression
// yielding an array is spliced in.
func sequenceValue(n *yaml.Node, eval Evaluator) (any, error) {
	out := make([]any, 0, len(n.Content))
	for _, c := range n.Content {
		v, err := nodeValue(c, eval)
		if err != nil {
			return nil, err
		}
		if c.Kind == yaml.ScalarNode && strings.Contains(c.Value, "${{") {
			if arr, ok := Plain(v).([]any); ok {
				out = append(out, arr...)
				continue
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// mappingValue is a mapping's keys in order, with expressions in keys
// evaluated and ${{ insert }} merging its value's keys in.
func mappingValue(n *yaml.Node, eval Evaluator) (any, error) {
	o := orderedObject{m: map[string]any{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		v, err := nodeValue(n.Content[i+1], eval)
		if err != nil {
			return nil, err
		}
		if insertRe.MatchString(k) {
			m, order, err := asObject(v)
			if err != nil {
				return nil, errs.E("matrix", errs.Invalid, "line %d: ${{ insert }} needs an object", n.Content[i].Line)
			}
			for _, mk := range order {
				o.put(mk, m[mk])
			}
			continue
		}
		if strings.Contains(k, "${{") {
			kv, err := eval(k)
			if err != nil {
				return nil, err
			}
			k = displayValue(Plain(kv))
		}
		o.put(k, v)
	}
	return o, nil
}

// put sets k, keeping its first place when it is there already.
func (o *orderedObject) put(k string, v any) {
	if _, dup := o.m[k]; !dup {
		o.keys = append(o.keys, k)
	}
	o.m[k] = v
}

// scalarValue is a scalar's typed value by its YAML tag, or what eval makes
// of its text.
func scalarValue(n *yaml.Node, eval Evaluator) (any, error) {
	switch n.Tag {
	case "!!null":
		return nil, nil
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err == nil {
			return b, nil
		}
	case "!!int":
		if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
			return float64(i), nil
		}
	case "!!float":
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f, nil
		}
	}
	return eval(n.Value)
}

// NodeValue converts a YAML node to a plain JSON-like value, evaluating
// string scalars with eval.
func NodeValue(n *yaml.Node, eval Evaluator) (any, error) {
	v, err := nodeValue(n, eval)
	return Plain(v), err
}

// Plain converts values to the plain JSON-like forms (map[string]any,
// []any, float64, ...). Values of other types (an expression engine's own
// object type) go through their JSON form.
func Plain(v any) any {
	switch x := v.(type) {
	case nil, bool, float64, string:
		return v
	case int:
		return float64(x)
	case orderedObject:
		return Plain(x.m)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Plain(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return fmt.Sprint(v)
	}
	return out
}

// keyOrder returns the top-level key order of an object value that is not
// a plain map (through its JSON form, which keeps order).
func keyOrder(v any) ([]string, bool) {
	switch v.(type) {
	case map[string]any, nil:
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	t, err := dec.Token()
	if err != nil || t != json.Delim('{') {
		return nil, false
	}
	var keys []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := kt.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil, false
		}
	}
	return keys, true
}
