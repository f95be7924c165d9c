package main

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestDumpOfGoDecodedEqualsOriginal: for every item, Go decodes its own .gob
// and the dump of the decoded value must equal the dump of the original; the
// generic wire decoder must produce the same dump too.
func TestDumpOfGoDecodedEqualsOriginal(t *testing.T) {
	for _, it := range Corpus() {
		t.Run(it.Name(), func(t *testing.T) {
			data, err := encodeItem(it)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := decodeTyped(data, it.GoType(), len(it.Values))
			if err != nil {
				t.Fatal(err)
			}
			gen, err := decodeGeneric(data, len(it.Values))
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				want, err := Dump(it.Values[i])
				if err != nil {
					t.Fatal(err)
				}
				got, err := Dump(v.Interface())
				if err != nil {
					t.Fatal(err)
				}
				wn, _ := normJSON(want)
				gn, _ := normJSON(got)
				if d := dumpsEqual(wn, gn, "$"); d != "" {
					t.Errorf("value %d: dump(decoded) != dump(original): %s", i, d)
				}
				genN, _ := normJSON(gen[i])
				if d := dumpsEqual(wn, genN, "$"); d != "" {
					t.Errorf("value %d: generic dump != dump(original): %s", i, d)
				}
				if d := valuesEqual(reflect.ValueOf(it.Values[i]), v, "$"); d != "" {
					t.Errorf("value %d: decoded != original: %s", i, d)
				}
			}
		})
	}
}

// TestGenVerifySelf runs gen, then verify with the Go files as the "rust" dir.
func TestGenVerifySelf(t *testing.T) {
	dir := t.TempDir()
	if err := genCorpus(dir); err != nil {
		t.Fatal(err)
	}
	// What a correct Rust side writes: the values without unmodelled fields.
	sent := t.TempDir()
	for _, it := range Corpus() {
		var buf bytes.Buffer
		enc := gob.NewEncoder(&buf)
		for _, v := range it.Values {
			w, err := withoutUnmodelled(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := enc.Encode(w); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(sent, it.Name()+".gob"), buf.Bytes(), 0o644)
	}
	var out bytes.Buffer
	failed, err := verify(&out, dir, sent)
	if err != nil || failed != 0 {
		t.Fatalf("verify: failed=%d err=%v\n%s", failed, err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d passed, 0 failed", len(Corpus()))) {
		t.Fatalf("unexpected summary:\n%s", out.String())
	}
	// A missing file and a corrupted file must fail.
	rdir := t.TempDir()
	items := Corpus()
	for _, it := range items[1:] {
		b, _ := os.ReadFile(filepath.Join(sent, it.Name()+".gob"))
		if it.Name() == "Post__typical" {
			b = bytes.Replace(b, []byte("rotate"), []byte("rotatE"), 1)
		}
		os.WriteFile(filepath.Join(rdir, it.Name()+".gob"), b, 0o644)
	}
	out.Reset()
	failed, _ = verify(&out, dir, rdir)
	if failed != 2 || !strings.Contains(out.String(), "FAIL "+items[0].Name()+": missing rust file") ||
		!strings.Contains(out.String(), "FAIL Post__typical: typed value 0 differs") {
		t.Fatalf("expected 2 failures, got %d:\n%s", failed, out.String())
	}
}

// zeroSentFields lists gob-sendable fields left at their zero value.
func zeroSentFields(v reflect.Value, path string, out *[]string, seen int) {
	if seen > 40 || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			zeroSentFields(v.Elem(), path, out, seen+1)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			zeroSentFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i), out, seen+1)
		}
	case reflect.Map:
		// Map values (Props, contexts) are hand-chosen data: not checked.
	case reflect.Struct:
		if ok, _ := externalIndir(v.Type()); ok {
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !sentField(f) {
				continue
			}
			if !isSent(v.Field(i)) {
				if baseType(f.Type) == v.Type() {
					continue // recursion stops somewhere
				}
				*out = append(*out, path+"."+f.Name)
				continue
			}
			zeroSentFields(v.Field(i), path+"."+f.Name, out, seen+1)
		}
	}
}

// TestFullVariantsAreFull: top-level and first-level nested fields of every
// "full" item are set (deeper levels are allowed to stop at recursion limits).
func TestFullVariantsAreFull(t *testing.T) {
	allowed := map[string]bool{
		// io.ReadCloser: gob can only send it nil.
		"Z_ServeHTTPArgs__full:$.Request.Body": true,
	}
	for _, it := range Corpus() {
		if it.Variant != "full" {
			continue
		}
		var zero []string
		zeroSentFields(reflect.ValueOf(it.Values[0]), "$", &zero, 0)
		for _, z := range zero {
			if allowed[it.Name()+":"+z] || strings.Count(z, ".") > 4 {
				continue
			}
			t.Errorf("%s: field %s is zero", it.Name(), z)
		}
	}
}
