package main

// Dump walker: renders a Go value the way encoding/gob SENDS it, in the JSON
// dump format shared with the Rust side (see README.md).

import (
	"bytes"
	"encoding"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"sync"
)

var (
	gobEncoderType      = reflect.TypeFor[gob.GobEncoder]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// implementsIndir mirrors encoding/gob's implementsInterface: it returns the
// number of pointer indirections to reach the implementing type, or -1 when
// only the pointer to a non-pointer type implements it.
func implementsIndir(typ, iface reflect.Type) (bool, int) {
	rt, indir := typ, 0
	for {
		if rt.Implements(iface) {
			return true, indir
		}
		if rt.Kind() != reflect.Pointer {
			break
		}
		indir++
		rt = rt.Elem()
	}
	if typ.Kind() != reflect.Pointer && reflect.PointerTo(typ).Implements(iface) {
		return true, -1
	}
	return false, 0
}

// externalIndir reports whether gob serialises typ with GobEncode /
// MarshalBinary / MarshalText (checked in that order, like gob).
func externalIndir(typ reflect.Type) (bool, int) {
	for _, it := range []reflect.Type{gobEncoderType, binaryMarshalerType, textMarshalerType} {
		if ok, indir := implementsIndir(typ, it); ok {
			return true, indir
		}
	}
	return false, 0
}

// externalValue climbs to the receiver gob would call (nil => invalid Value).
func externalValue(v reflect.Value, indir int) reflect.Value {
	if indir == -1 {
		if !v.CanAddr() {
			p := reflect.New(v.Type())
			p.Elem().Set(v)
			return p
		}
		return v.Addr()
	}
	for i := 0; i < indir; i++ {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

func externalBytes(v reflect.Value) ([]byte, error) {
	switch m := v.Interface().(type) {
	case gob.GobEncoder:
		return m.GobEncode()
	case encoding.BinaryMarshaler:
		return m.MarshalBinary()
	case encoding.TextMarshaler:
		return m.MarshalText()
	}
	return nil, fmt.Errorf("dump: %s is not a marshaler", v.Type())
}

func isSent(v reflect.Value) bool {
	// v is a struct field value; reports whether gob would send it.
	if ok, indir := externalIndir(v.Type()); ok {
		if indir == -1 {
			return true
		}
		ev := externalValue(v, indir)
		return ev.IsValid() && !ev.IsZero()
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		v = v.Elem()
		if ok, _ := externalIndir(v.Type()); ok {
			return isSent(v)
		}
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0
	case reflect.Complex64, reflect.Complex128:
		return v.Complex() != 0
	case reflect.String, reflect.Slice:
		return v.Len() > 0
	case reflect.Map, reflect.Interface:
		return !v.IsNil()
	case reflect.Struct, reflect.Array:
		return true
	}
	return false
}

// sentField reports whether a struct field takes part in gob encoding.
func sentField(f reflect.StructField) bool {
	if !f.IsExported() {
		return false
	}
	t := f.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() != reflect.Func && t.Kind() != reflect.Chan
}

func floatDump(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// Dump returns the JSON-able dump of v (map[string]any / []any / scalars).
func Dump(x any) (any, error) {
	var out any
	err := catch(func() { out = dumpValue(reflect.ValueOf(x)) })
	return out, err
}

func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(dumpError); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}

type dumpError struct{ error }

func failf(format string, args ...any) { panic(dumpError{fmt.Errorf(format, args...)}) }

func dumpValue(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if ok, indir := externalIndir(v.Type()); ok {
		ev := externalValue(v, indir)
		if !ev.IsValid() {
			failf("dump: nil pointer of type %s", v.Type())
		}
		b, err := externalBytes(ev)
		if err != nil {
			failf("dump: marshal %s: %v", v.Type(), err)
		}
		return map[string]any{"encoded": hex.EncodeToString(b)}
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return floatDump(v.Float())
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return []any{floatDump(real(c)), floatDump(imag(c))}
	case reflect.String:
		return v.String()
	case reflect.Pointer:
		if v.IsNil() {
			failf("dump: nil pointer of type %s", v.Type())
		}
		return dumpValue(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		c := v.Elem()
		return map[string]any{"type": gobName(c), "value": dumpValue(c)}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return map[string]any{"bytes": hex.EncodeToString(v.Bytes())}
		}
		fallthrough
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = dumpValue(v.Index(i))
		}
		return out
	case reflect.Map:
		pairs := make([][2]any, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			pairs = append(pairs, [2]any{dumpValue(it.Key()), dumpValue(it.Value())})
		}
		return sortPairs(pairs)
	case reflect.Struct:
		obj := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !sentField(f) || !isSent(v.Field(i)) {
				continue
			}
			obj[f.Name] = dumpValue(v.Field(i))
		}
		return obj
	}
	failf("dump: unsupported kind %s (%s)", v.Kind(), v.Type())
	return nil
}

// sortPairs orders map entries by the compact JSON text of the key dump.
func sortPairs(pairs [][2]any) []any {
	keys := make([]string, len(pairs))
	for i, p := range pairs {
		b, err := json.Marshal(p[0])
		if err != nil {
			failf("dump: marshal map key: %v", err)
		}
		keys[i] = string(b)
	}
	idx := make([]int, len(pairs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	out := make([]any, len(pairs))
	for i, j := range idx {
		out[i] = []any{pairs[j][0], pairs[j][1]}
	}
	return out
}

var gobNames sync.Map // reflect.Type -> string

// gobName returns the name gob puts on the wire for a concrete value stored
// in an interface (the gob.Register name, e.g. "*model.AppError",
// "[]*model.SlackAttachment" for []*model.MessageAttachment). It is obtained
// by letting gob encode a one-field struct and reading the name back.
func gobName(c reflect.Value) string {
	if n, ok := gobNames.Load(c.Type()); ok {
		return n.(string)
	}
	var buf bytes.Buffer
	type probe struct{ V any }
	if err := gob.NewEncoder(&buf).Encode(probe{V: c.Interface()}); err != nil {
		failf("dump: gob cannot encode %s inside an interface: %v", c.Type(), err)
	}
	d := newWireDecoder(&buf)
	var name string
	err := wcatch(func() {
		d.buf, d.pos = d.buf[:0], 0
		if id := d.typeSequence(false); id < firstUserID {
			failw("unexpected probe type id %d", id)
		}
		if d.nextUint() != 1 {
			failw("unexpected probe field delta")
		}
		name = string(d.nextBytes())
	})
	if err != nil {
		failf("dump: probing gob name of %s: %v", c.Type(), err)
	}
	gobNames.Store(c.Type(), name)
	return name
}

// jsonText renders a dump as compact JSON.
func jsonText(d any) string {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Sprintf("<json error %v>", err)
	}
	return string(b)
}
