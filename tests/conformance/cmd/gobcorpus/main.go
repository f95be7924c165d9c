// Command gobcorpus is the Go side of the gob / net/rpc cross-check harness.
// See ../../README.md.
package main

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  gobcorpus gen -out DIR
  gobcorpus list
  gobcorpus verify -corpus DIR -rust RDIR
  gobcorpus rpc-record -out DIR
  gobcorpus rpc-client -socket PATH
  gobcorpus rpc-server -socket PATH
  gobcorpus bench -corpus DIR [-seconds S]`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	out := fs.String("out", "", "output directory")
	corpus := fs.String("corpus", "", "corpus directory (written by gen)")
	rust := fs.String("rust", "", "directory with the Rust-encoded .gob files")
	socket := fs.String("socket", "", "unix socket path")
	seconds := fs.Float64("seconds", 2, "seconds per bench case")
	fs.Parse(os.Args[2:])
	need := func(name, v string) {
		if v == "" {
			fmt.Fprintf(os.Stderr, "%s: -%s is required\n", os.Args[1], name)
			os.Exit(2)
		}
	}
	var err error
	switch os.Args[1] {
	case "gen":
		need("out", *out)
		err = genCorpus(*out)
	case "list":
		for _, it := range Corpus() {
			fmt.Printf("%s\t%d\t%s\n", it.Name(), len(it.Values), it.GoType())
		}
	case "verify":
		need("corpus", *corpus)
		need("rust", *rust)
		var failed int
		failed, err = verify(os.Stdout, *corpus, *rust)
		if err == nil && failed > 0 {
			os.Exit(1)
		}
	case "rpc-record":
		need("out", *out)
		err = rpcRecord(*out)
	case "rpc-client":
		need("socket", *socket)
		var failed int
		failed, err = rpcClientCheck(os.Stdout, *socket)
		if err == nil && failed > 0 {
			os.Exit(1)
		}
	case "rpc-server":
		need("socket", *socket)
		err = rpcServe(*socket)
	case "bench":
		need("corpus", *corpus)
		err = bench(os.Stdout, *corpus, *seconds)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobcorpus:", err)
		os.Exit(1)
	}
}

// encodeItem encodes all values of an item on one fresh gob stream.
func encodeItem(it Item) ([]byte, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for i, v := range it.Values {
		if reflect.TypeOf(v) != it.GoType() {
			return nil, fmt.Errorf("%s: value %d has type %T, want %s", it.Name(), i, v, it.GoType())
		}
		if err := enc.Encode(v); err != nil {
			return nil, fmt.Errorf("%s: encode value %d: %w", it.Name(), i, err)
		}
	}
	return buf.Bytes(), nil
}

type corpusJSON struct {
	GoType string            `json:"go_type"`
	Values []json.RawMessage `json:"values"`
}

func itemJSON(it Item) ([]byte, error) {
	cj := corpusJSON{GoType: it.GoType().String()}
	for i, v := range it.Values {
		d, err := Dump(v)
		if err != nil {
			return nil, fmt.Errorf("%s: dump value %d: %w", it.Name(), i, err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		cj.Values = append(cj.Values, b)
	}
	return json.MarshalIndent(cj, "", " ")
}

func genCorpus(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	items := Corpus()
	for _, it := range items {
		g, err := encodeItem(it)
		if err != nil {
			return err
		}
		j, err := itemJSON(it)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, it.Name()+".gob"), g, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, it.Name()+".json"), append(j, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d items to %s\n", len(items), dir)
	return nil
}

// decodeTyped decodes n values of type t from one gob stream.
func decodeTyped(data []byte, t reflect.Type, n int) ([]reflect.Value, error) {
	dec := gob.NewDecoder(bytes.NewReader(data))
	var out []reflect.Value
	for i := 0; i < n; i++ {
		p := reflect.New(t)
		if err := dec.DecodeValue(p); err != nil {
			return nil, fmt.Errorf("gob decode value %d: %w", i, err)
		}
		out = append(out, p.Elem())
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, fmt.Errorf("stream has data after %d values (err=%v)", n, err)
	}
	return out, nil
}

// decodeGeneric decodes n dumps from one gob stream using wire types only.
func decodeGeneric(data []byte, n int) ([]any, error) {
	d := newWireDecoder(bytes.NewReader(data))
	var out []any
	for i := 0; i < n; i++ {
		v, err := d.Next()
		if err != nil {
			return nil, fmt.Errorf("generic decode value %d: %w", i, err)
		}
		out = append(out, v)
	}
	if _, err := d.Next(); err != io.EOF {
		return nil, fmt.Errorf("generic: stream has data after %d values (err=%v)", n, err)
	}
	return out, nil
}

// checkItem verifies one Rust-encoded stream against the original item and
// the expected dumps from the corpus .json. Returns "" on success.
func checkItem(it Item, expected corpusJSON, rustGob []byte) string {
	if expected.GoType != it.GoType().String() {
		return fmt.Sprintf("corpus json go_type %s, want %s (stale corpus?)", expected.GoType, it.GoType())
	}
	if len(expected.Values) != len(it.Values) {
		return fmt.Sprintf("corpus json has %d values, want %d (stale corpus?)", len(expected.Values), len(it.Values))
	}
	exp := make([]any, len(expected.Values))
	for i, raw := range expected.Values {
		e, err := parseJSON(raw)
		if err != nil {
			return fmt.Sprintf("corpus json value %d: %v", i, err)
		}
		own, err := Dump(it.Values[i])
		if err != nil {
			return err.Error()
		}
		ownN, err := normJSON(own)
		if err != nil {
			return err.Error()
		}
		if d := dumpsEqual(e, ownN, "$"); d != "" {
			return fmt.Sprintf("corpus json value %d differs from the built-in corpus (stale corpus?): %s", i, d)
		}
		exp[i] = e
	}
	// What Rust can send back: the originals without the unmodelled fields.
	want := make([]any, len(it.Values))
	for i, v := range it.Values {
		w, err := withoutUnmodelled(v)
		if err != nil {
			return err.Error()
		}
		if want[i], err = Dump(w); err == nil {
			want[i], err = normJSON(want[i])
		}
		if err != nil {
			return err.Error()
		}
		exp[i] = want[i]
		want[i] = w
	}
	vals, err := decodeTyped(rustGob, it.GoType(), len(it.Values))
	if err != nil {
		return "typed: " + err.Error()
	}
	for i, v := range vals {
		if d := valuesEqual(reflect.ValueOf(want[i]), v, "$"); d != "" {
			return fmt.Sprintf("typed value %d differs: %s", i, d)
		}
	}
	gen, err := decodeGeneric(rustGob, len(it.Values))
	if err != nil {
		return err.Error()
	}
	for i, g := range gen {
		gn, err := normJSON(g)
		if err != nil {
			return err.Error()
		}
		if d := dumpsEqual(exp[i], gn, "$"); d != "" {
			return fmt.Sprintf("generic dump of value %d differs (expected vs rust): %s", i, d)
		}
	}
	return ""
}

func verify(w io.Writer, corpusDir, rustDir string) (int, error) {
	passed, failed := 0, 0
	for _, it := range Corpus() {
		reason := func() string {
			jb, err := os.ReadFile(filepath.Join(corpusDir, it.Name()+".json"))
			if err != nil {
				return "missing corpus json: " + err.Error()
			}
			var cj corpusJSON
			if err := json.Unmarshal(jb, &cj); err != nil {
				return "corpus json: " + err.Error()
			}
			rb, err := os.ReadFile(filepath.Join(rustDir, it.Name()+".gob"))
			if err != nil {
				return "missing rust file: " + err.Error()
			}
			return checkItem(it, cj, rb)
		}()
		if reason == "" {
			passed++
			fmt.Fprintf(w, "PASS %s\n", it.Name())
		} else {
			failed++
			fmt.Fprintf(w, "FAIL %s: %s\n", it.Name(), reason)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return failed, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
