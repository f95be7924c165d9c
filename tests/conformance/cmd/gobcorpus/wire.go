package main

// Generic gob stream decoder: turns a gob stream into dumps WITHOUT knowing
// the Go types, using only the type definitions on the wire. It mirrors the
// message/type-sequence logic of encoding/gob's Decoder (decoder.go) but is
// stricter: trailing bytes after a value are an error.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"unicode/utf8"
)

const firstUserID = 64

// Predefined gob type ids.
const (
	tBool      = 1
	tInt       = 2
	tUint      = 3
	tFloat     = 4
	tBytes     = 5
	tString    = 6
	tComplex   = 7
	tInterface = 8
)

type wireKind int

const (
	wArray wireKind = iota
	wSlice
	wStruct
	wMap
	wGobEncoder
	wBinaryMarshaler
	wTextMarshaler
)

type wireField struct {
	Name string
	ID   int
}

type wireType struct {
	Kind   wireKind
	Name   string
	ID     int
	Elem   int
	Key    int
	Len    int
	Fields []wireField
}

type wireDecoder struct {
	r     io.Reader
	msgs  int
	buf   []byte
	pos   int
	types map[int]*wireType
}

func newWireDecoder(r io.Reader) *wireDecoder {
	return &wireDecoder{r: r, types: map[int]*wireType{}}
}

type wireError struct{ error }

func failw(format string, args ...any) { panic(wireError{fmt.Errorf(format, args...)}) }

func wcatch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			switch e := r.(type) {
			case wireError:
				err = e.error
			case dumpError:
				err = e.error
			default:
				panic(r)
			}
		}
	}()
	f()
	return nil
}

var errCleanEOF = errors.New("EOF")

// recvMessage reads the next length-prefixed message into buf.
func (d *wireDecoder) recvMessage(allowEOF bool) {
	var first [1]byte
	if _, err := io.ReadFull(d.r, first[:]); err != nil {
		if err == io.EOF && allowEOF {
			panic(wireError{errCleanEOF})
		}
		failw("reading message length: %v", err)
	}
	n := uint64(first[0])
	if first[0] >= 0x80 {
		cnt := -int(int8(first[0]))
		if cnt > 8 {
			failw("bad message length prefix %#x", first[0])
		}
		b := make([]byte, cnt)
		if _, err := io.ReadFull(d.r, b); err != nil {
			failw("reading message length: %v", err)
		}
		n = 0
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
	}
	if n == 0 || n > 1<<30 {
		failw("bad message length %d", n)
	}
	d.buf = make([]byte, n)
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		failw("reading message body (%d bytes): %v", n, err)
	}
	d.pos = 0
	d.msgs++
}

func (d *wireDecoder) byte1() byte {
	if d.pos >= len(d.buf) {
		failw("unexpected end of message")
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

func (d *wireDecoder) nextUint() uint64 {
	b := d.byte1()
	if b < 0x80 {
		return uint64(b)
	}
	n := -int(int8(b))
	if n > 8 {
		failw("bad uint length byte %#x", b)
	}
	var x uint64
	for i := 0; i < n; i++ {
		x = x<<8 | uint64(d.byte1())
	}
	return x
}

func (d *wireDecoder) nextInt() int64 {
	u := d.nextUint()
	if u&1 != 0 {
		return ^int64(u >> 1)
	}
	return int64(u >> 1)
}

func (d *wireDecoder) nextBytes() []byte {
	n := d.nextUint()
	if n > uint64(len(d.buf)-d.pos) {
		failw("length %d exceeds message", n)
	}
	b := d.buf[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return b
}

func (d *wireDecoder) nextString() string {
	b := d.nextBytes()
	if !utf8.Valid(b) {
		failw("invalid UTF-8 in string %q", b)
	}
	return string(b)
}

func (d *wireDecoder) nextFloat() float64 {
	return math.Float64frombits(bits.ReverseBytes64(d.nextUint()))
}

// typeSequence mirrors gob's decodeTypeSequence.
func (d *wireDecoder) typeSequence(isInterface bool) int {
	first := true
	for {
		if d.pos >= len(d.buf) {
			d.recvMessage(first && !isInterface)
		}
		id := d.nextInt()
		if id >= 0 {
			return int(id)
		}
		d.recvType(int(-id))
		if d.pos < len(d.buf) {
			if !isInterface {
				failw("extra data in buffer after type definition %d", -id)
			}
			d.nextUint()
		}
		first = false
	}
}

// structFields walks a struct encoding, calling f for each field number.
func (d *wireDecoder) structFields(f func(field int)) {
	field := -1
	for d.pos < len(d.buf) {
		delta := d.nextUint()
		if delta == 0 {
			return
		}
		field += int(delta)
		f(field)
	}
}

func (d *wireDecoder) commonType(wt *wireType) {
	d.structFields(func(field int) {
		switch field {
		case 0:
			wt.Name = d.nextString()
		case 1:
			wt.ID = int(d.nextInt())
		default:
			failw("CommonType: unknown field %d", field)
		}
	})
}

func (d *wireDecoder) recvType(id int) {
	if id < firstUserID || d.types[id] != nil {
		failw("gob: duplicate type received (id %d)", id)
	}
	wt := &wireType{Kind: -1}
	d.structFields(func(field int) {
		if wt.Kind != -1 {
			failw("wireType %d: more than one kind set", id)
		}
		wt.Kind = wireKind(field)
		switch wt.Kind {
		case wArray, wSlice, wMap, wStruct:
			d.structFields(func(f int) {
				switch {
				case f == 0:
					d.commonType(wt)
				case f == 1 && wt.Kind == wStruct:
					n := int(d.nextUint())
					for i := 0; i < n; i++ {
						var fl wireField
						d.structFields(func(ff int) {
							switch ff {
							case 0:
								fl.Name = d.nextString()
							case 1:
								fl.ID = int(d.nextInt())
							default:
								failw("fieldType: unknown field %d", ff)
							}
						})
						wt.Fields = append(wt.Fields, fl)
					}
				case f == 1 && wt.Kind == wMap:
					wt.Key = int(d.nextInt())
				case f == 1:
					wt.Elem = int(d.nextInt())
				case f == 2 && (wt.Kind == wMap):
					wt.Elem = int(d.nextInt())
				case f == 2 && wt.Kind == wArray:
					wt.Len = int(d.nextInt())
				default:
					failw("type %d: unknown field %d", id, f)
				}
			})
		case wGobEncoder, wBinaryMarshaler, wTextMarshaler:
			d.structFields(func(f int) {
				if f != 0 {
					failw("gobEncoderType: unknown field %d", f)
				}
				d.commonType(wt)
			})
		default:
			failw("wireType %d: unknown kind field %d", id, field)
		}
	})
	if wt.Kind == -1 {
		failw("wireType %d: empty definition", id)
	}
	d.types[id] = wt
}

func (d *wireDecoder) wtype(id int) *wireType {
	wt := d.types[id]
	if wt == nil {
		failw("reference to undefined type id %d", id)
	}
	return wt
}

func (d *wireDecoder) isStruct(id int) bool {
	return id >= firstUserID && d.wtype(id).Kind == wStruct
}

// topValue decodes a value as it appears at top level or inside an
// interface: structs directly, everything else as a singleton (delta 0).
func (d *wireDecoder) topValue(id int) any {
	if d.isStruct(id) {
		return d.value(id)
	}
	if delta := d.nextUint(); delta != 0 {
		failw("non-zero delta %d for singleton value of type %d", delta, id)
	}
	return d.value(id)
}

func (d *wireDecoder) value(id int) any {
	switch id {
	case tBool:
		switch d.nextUint() {
		case 0:
			return false
		case 1:
			return true
		default:
			failw("invalid bool")
		}
	case tInt:
		return d.nextInt()
	case tUint:
		return d.nextUint()
	case tFloat:
		return floatDump(d.nextFloat())
	case tComplex:
		re := d.nextFloat()
		return []any{floatDump(re), floatDump(d.nextFloat())}
	case tBytes:
		return map[string]any{"bytes": hex.EncodeToString(d.nextBytes())}
	case tString:
		return d.nextString()
	case tInterface:
		return d.iface()
	}
	if id < firstUserID {
		failw("reserved type id %d", id)
	}
	wt := d.wtype(id)
	switch wt.Kind {
	case wStruct:
		obj := map[string]any{}
		d.structFields(func(f int) {
			if f >= len(wt.Fields) {
				failw("struct %q: field number %d out of range", wt.Name, f)
			}
			fl := wt.Fields[f]
			if _, dup := obj[fl.Name]; dup {
				failw("struct %q: field %s sent twice", wt.Name, fl.Name)
			}
			obj[fl.Name] = d.value(fl.ID)
		})
		return obj
	case wSlice, wArray:
		n := int(d.nextUint())
		if wt.Kind == wArray && n != wt.Len {
			failw("array %q: length %d, declared %d", wt.Name, n, wt.Len)
		}
		if n > len(d.buf)-d.pos {
			failw("slice %q: count %d exceeds message", wt.Name, n)
		}
		out := make([]any, n)
		for i := range out {
			out[i] = d.value(wt.Elem)
		}
		return out
	case wMap:
		n := int(d.nextUint())
		if n > len(d.buf)-d.pos {
			failw("map %q: count %d exceeds message", wt.Name, n)
		}
		pairs := make([][2]any, n)
		for i := range pairs {
			k := d.value(wt.Key)
			pairs[i] = [2]any{k, d.value(wt.Elem)}
		}
		return sortPairs(pairs)
	case wGobEncoder, wBinaryMarshaler, wTextMarshaler:
		return map[string]any{"encoded": hex.EncodeToString(d.nextBytes())}
	}
	failw("type %d: bad kind", id)
	return nil
}

func (d *wireDecoder) iface() any {
	name := d.nextString()
	if name == "" {
		return nil
	}
	id := d.typeSequence(true)
	n := d.nextUint()
	start, msgs := d.pos, d.msgs
	v := d.topValue(id)
	if used := uint64(d.pos - start); msgs == d.msgs && used != n {
		failw("interface %q: value length %d but %d bytes used", name, n, used)
	}
	return map[string]any{"type": name, "value": v}
}

// Next decodes the next top-level value of the stream into a dump.
// It returns io.EOF at a clean end of stream.
func (d *wireDecoder) Next() (out any, err error) {
	err = wcatch(func() {
		d.buf, d.pos = d.buf[:0], 0
		id := d.typeSequence(false)
		out = d.topValue(id)
		if d.pos != len(d.buf) {
			failw("%d trailing bytes after value", len(d.buf)-d.pos)
		}
	})
	if err == errCleanEOF {
		err = io.EOF
	}
	return out, err
}

// WireTypes returns the type table received so far (for diagnostics).
func (d *wireDecoder) WireTypes() map[int]*wireType { return d.types }
