package main

// Reflective filler used for the "full" variants: it sets every exported,
// gob-sent field that is still zero to a deterministic non-zero value,
// recursing into nested structs, pointers, slices, maps and interfaces.
// Hand-written values are kept (only zero fields are filled).

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

var (
	timeType  = reflect.TypeFor[time.Time]()
	errorType = reflect.TypeFor[error]()
)

type filler struct {
	n     int
	stack map[reflect.Type]int
}

func fillAll[T any](v T) T {
	f := &filler{stack: map[reflect.Type]int{}}
	f.fill(reflect.ValueOf(&v).Elem(), "v", 0)
	return v
}

func (f *filler) next() int { f.n++; return f.n }

// baseStruct returns the struct type reached by dereferencing pointers/slices.
func baseType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	return t
}

// tooDeep stops recursion through self-referential types.
func (f *filler) tooDeep(t reflect.Type, depth int) bool {
	return depth > 12 || f.stack[baseType(t)] >= 2
}

func (f *filler) fill(v reflect.Value, name string, depth int) {
	t := v.Type()
	if t == timeType {
		if v.IsZero() {
			v.Set(reflect.ValueOf(time.Date(2024, 5, 17, 9, 30, f.next()%60, 123456789, time.UTC)))
		}
		return
	}
	if ok, _ := externalIndir(t); ok && t.Kind() != reflect.Pointer {
		return // other marshalers (url.URL, big.Int...): only hand-written values
	}
	switch v.Kind() {
	case reflect.String:
		if v.Len() == 0 {
			v.SetString(fmt.Sprintf("%s-%d", name, f.next()))
		}
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() == 0 {
			v.SetInt(int64(1000 + f.next()))
		}
	case reflect.Int8:
		if v.Int() == 0 {
			v.SetInt(int64(f.next()%100 + 1))
		}
	case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() == 0 {
			v.SetUint(uint64(2000 + f.next()))
		}
	case reflect.Uint8:
		if v.Uint() == 0 {
			v.SetUint(uint64(f.next()%200 + 1))
		}
	case reflect.Float32, reflect.Float64:
		if v.Float() == 0 {
			v.SetFloat(float64(f.next()) + 0.25)
		}
	case reflect.Pointer:
		if v.IsNil() {
			if f.tooDeep(t.Elem(), depth) {
				return
			}
			v.Set(reflect.New(t.Elem()))
		}
		f.fill(v.Elem(), name, depth+1)
	case reflect.Interface:
		if v.IsNil() {
			if t == errorType {
				v.Set(reflect.ValueOf(&model.AppError{}))
			} else if t.NumMethod() == 0 {
				if f.next()%2 == 0 {
					v.Set(reflect.ValueOf(fmt.Sprintf("%s-%d", name, f.n)))
				} else {
					v.Set(reflect.ValueOf(int64(3000 + f.n)))
				}
				return
			} else {
				return // e.g. io.ReadCloser: gob can only send it nil here
			}
		}
		if c := v.Elem(); c.Kind() == reflect.Pointer && !c.IsNil() {
			f.fill(c.Elem(), name, depth+1)
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if v.Len() == 0 {
				v.SetBytes([]byte(fmt.Sprintf("%s-bytes-%d", name, f.next())))
			}
			return
		}
		if v.Len() == 0 {
			if f.tooDeep(t.Elem(), depth) {
				return
			}
			v.Set(reflect.MakeSlice(t, 2, 2))
		}
		for i := 0; i < v.Len(); i++ {
			f.fill(v.Index(i), name, depth+1)
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			f.fill(v.Index(i), name, depth+1)
		}
	case reflect.Map:
		if v.Len() > 0 || f.tooDeep(t.Elem(), depth) {
			return
		}
		m := reflect.MakeMap(t)
		for i := 0; i < 2; i++ {
			k := reflect.New(t.Key()).Elem()
			f.fill(k, name+"Key", depth+1)
			e := reflect.New(t.Elem()).Elem()
			f.fill(e, name+"Val", depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		f.stack[t]++
		defer func() { f.stack[t]-- }()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if sentField(sf) {
				f.fill(v.Field(i), sf.Name, depth+1)
			}
		}
	}
}

// mmid returns a deterministic Mattermost-style 26-character id.
func mmid(seed string) string {
	const alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"
	sum := sha256.Sum256([]byte(seed))
	out := make([]byte, 26)
	for i := range out {
		out[i] = alphabet[sum[i]%32]
	}
	return string(out)
}
