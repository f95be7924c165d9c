package main

// bench: steady-state encoding/gob throughput on Post__typical and
// CommandArgs__typical (types sent/received once, outside the timing).

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"time"
)

// replayReader serves head once, then msg forever.
type replayReader struct {
	head, msg []byte
	pos       int
	inHead    bool
}

func (r *replayReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := r.msg
		if r.inHead {
			src = r.head
		}
		c := copy(p[n:], src[r.pos:])
		n += c
		r.pos += c
		if r.pos == len(src) {
			r.pos, r.inHead = 0, false
		}
	}
	return n, nil
}

type benchResult struct {
	Lang       string  `json:"lang"`
	Case       string  `json:"case"`
	NsPerOp    float64 `json:"ns_per_op"`
	BytesPerOp int     `json:"bytes_per_op"`
}

// timeLoop runs op for a warm-up then for d, returning ns per op.
func timeLoop(d time.Duration, op func() error) (float64, error) {
	run := func(d time.Duration) (int, time.Duration, error) {
		start, n := time.Now(), 0
		for {
			for i := 0; i < 64; i++ {
				if err := op(); err != nil {
					return n, 0, err
				}
			}
			n += 64
			if el := time.Since(start); el >= d {
				return n, el, nil
			}
		}
	}
	if _, _, err := run(d / 5); err != nil {
		return 0, err
	}
	n, el, err := run(d)
	if err != nil {
		return 0, err
	}
	return float64(el.Nanoseconds()) / float64(n), nil
}

func benchValue(w io.Writer, name string, v any, d time.Duration) error {
	// ENCODE: long-lived encoder, types sent before timing.
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		return err
	}
	head := append([]byte(nil), buf.Bytes()...)
	buf.Reset()
	if err := enc.Encode(v); err != nil {
		return err
	}
	msg := append([]byte(nil), buf.Bytes()...)
	ns, err := timeLoop(d, func() error { buf.Reset(); return enc.Encode(v) })
	if err != nil {
		return err
	}
	emit(w, benchResult{"go", "encode_" + name, ns, len(msg)})

	// DECODE: long-lived decoder on an endless stream of value messages.
	dec := gob.NewDecoder(&replayReader{head: head, msg: msg, inHead: true})
	t := reflect.TypeOf(v)
	ns, err = timeLoop(d, func() error { return dec.DecodeValue(reflect.New(t)) })
	if err != nil {
		return err
	}
	emit(w, benchResult{"go", "decode_" + name, ns, len(msg)})
	return nil
}

func emit(w io.Writer, r benchResult) {
	b, _ := json.Marshal(r)
	fmt.Fprintln(w, string(b))
}

func bench(w io.Writer, dir string, seconds float64) error {
	d := time.Duration(seconds * float64(time.Second))
	for _, c := range []struct{ name, item string }{
		{"post", "Post__typical"},
		{"command_args", "CommandArgs__typical"},
	} {
		var it Item
		for _, x := range Corpus() {
			if x.Name() == c.item {
				it = x
			}
		}
		// Use the value from the corpus directory (what the Rust side sees).
		data, err := os.ReadFile(filepath.Join(dir, c.item+".gob"))
		if err != nil {
			return err
		}
		vals, err := decodeTyped(data, it.GoType(), 1)
		if err != nil {
			return fmt.Errorf("%s: %w", c.item, err)
		}
		if err := benchValue(w, c.name, vals[0].Interface(), d); err != nil {
			return fmt.Errorf("%s: %w", c.item, err)
		}
	}
	return nil
}
