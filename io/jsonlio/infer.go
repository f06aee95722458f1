package jsonlio

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// kind is an inferred JSON type; a nil *node is "only nulls seen".
type node struct {
	kind   arrow.Type // BOOL, INT64, FLOAT64, STRING, LIST, STRUCT
	elem   *node
	fields []string
	sub    map[string]*node
}

type inferrer struct{ root node }

// add folds the line's object into the inferred types. A line that clashes
// with the ones before it leaves them as they were.
func (in *inferrer) add(obj *object, lineNo int64) error {
	in.root.kind = arrow.STRUCT
	root := in.root.clone()
	if _, err := merge(root, obj, "", lineNo); err != nil {
		return err
	}
	in.root = *root
	return nil
}

// clone returns a deep copy of n.
func (n *node) clone() *node {
	if n == nil {
		return nil
	}
	c := &node{kind: n.kind, elem: n.elem.clone(), fields: append([]string(nil), n.fields...)}
	if n.sub != nil {
		c.sub = make(map[string]*node, len(n.sub))
		for k, v := range n.sub {
			c.sub[k] = v.clone()
		}
	}
	return c
}

// fits reports why value v, at path in line lineNo, does not fit the
// column type that n stands for (see dataType), or nil when it does.
func fits(n *node, v any, path string, lineNo int64) error {
	k := kindOf(v)
	if k == arrow.NULL {
		return nil
	}
	want := arrow.STRING
	if n != nil {
		want = n.kind
	}
	if k != want && !(want == arrow.FLOAT64 && k == arrow.INT64) {
		return fmt.Errorf("line %d: column %q holds %s where the schema inferred from the first %d lines has %s", lineNo, path, article(k), InferLines, article(want))
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if err := fits(n.elem, e, path+"[]", lineNo); err != nil {
				return err
			}
		}
	case *object:
		for _, key := range x.keys {
			p := key
			if path != "" {
				p = path + "." + key
			}
			sub, ok := n.sub[key]
			if !ok {
				return fmt.Errorf("line %d: key %q is not in the schema inferred from the first %d lines", lineNo, p, InferLines)
			}
			if err := fits(sub, x.vals[key], p, lineNo); err != nil {
				return err
			}
		}
	}
	return nil
}

func kindOf(v any) arrow.Type {
	switch x := v.(type) {
	case bool:
		return arrow.BOOL
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return arrow.INT64
		}
		return arrow.FLOAT64
	case string:
		return arrow.STRING
	case []any:
		return arrow.LIST
	case *object:
		return arrow.STRUCT
	}
	return arrow.NULL
}

// merge folds value v into n (which may be nil) and returns the result.
func merge(n *node, v any, path string, lineNo int64) (*node, error) {
	k := kindOf(v)
	if k == arrow.NULL {
		return n, nil
	}
	if n == nil {
		n = &node{kind: k}
	} else if n.kind != k {
		switch {
		case n.kind == arrow.INT64 && k == arrow.FLOAT64:
			n.kind = arrow.FLOAT64
		case n.kind == arrow.FLOAT64 && k == arrow.INT64:
		default:
			return nil, fmt.Errorf("line %d: column %q holds %s after %s", lineNo, path, article(k), article(n.kind))
		}
		return n, nil
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			var err error
			if n.elem, err = merge(n.elem, e, path+"[]", lineNo); err != nil {
				return nil, err
			}
		}
	case *object:
		if n.sub == nil {
			n.sub = map[string]*node{}
		}
		for _, key := range x.keys {
			if _, ok := n.sub[key]; !ok {
				n.fields = append(n.fields, key)
				n.sub[key] = nil
			}
			p := key
			if path != "" {
				p = path + "." + key
			}
			m, err := merge(n.sub[key], x.vals[key], p, lineNo)
			if err != nil {
				return nil, err
			}
			n.sub[key] = m
		}
	}
	return n, nil
}

func (n *node) dataType() arrow.DataType {
	if n == nil {
		return arrow.BinaryTypes.String
	}
	switch n.kind {
	case arrow.BOOL:
		return arrow.FixedWidthTypes.Boolean
	case arrow.INT64:
		return arrow.PrimitiveTypes.Int64
	case arrow.FLOAT64:
		return arrow.PrimitiveTypes.Float64
	case arrow.LIST:
		return arrow.ListOf(n.elem.dataType())
	case arrow.STRUCT:
		return arrow.StructOf(n.arrowFields()...)
	}
	return arrow.BinaryTypes.String
}

func (n *node) arrowFields() []arrow.Field {
	fs := make([]arrow.Field, len(n.fields))
	for i, name := range n.fields {
		fs[i] = arrow.Field{Name: name, Type: n.sub[name].dataType(), Nullable: true}
	}
	return fs
}

func (in *inferrer) schema() *arrow.Schema { return arrow.NewSchema(in.root.arrowFields(), nil) }

// object is a JSON object that remembers its key order, so that columns
// appear in the order the file first names them.
type object struct {
	keys []string
	vals map[string]any
}

// decodeValue reads one JSON value from dec (which must use UseNumber),
// keeping object key order.
func decodeValue(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil
	}
	switch d {
	case '{':
		o := &object{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, ok := kt.(string)
			if !ok {
				return nil, fmt.Errorf("object key is %v", kt)
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			// Arrow's record builder appends a value per occurrence, so a
			// repeated key would leave its column a row longer than the
			// others.
			if _, dup := o.vals[k]; dup {
				return nil, fmt.Errorf("duplicate key %q", k)
			}
			o.keys = append(o.keys, k)
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		var a []any
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if a == nil {
			a = []any{}
		}
		_, err := dec.Token()
		return a, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// article returns the type's name with its indefinite article ("an INT64",
// "a STRING") for messages.
func article(t arrow.Type) string {
	s := t.String()
	if s != "" && strings.ContainsRune("AEIOU", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
