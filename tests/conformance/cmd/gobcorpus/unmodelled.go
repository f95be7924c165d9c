package main

// Fields the Rust model deliberately does not carry. Rust skips them when
// decoding (so reading them is still checked by the generic comparison of
// Go's own stream) and cannot send them back, so the round-trip comparison
// expects them zeroed.

import (
	"bytes"
	"encoding/gob"
	"reflect"

	"github.com/mattermost/mattermost/server/public/model"
)

// unmodelled lists, per struct type, the fields dropped by the Rust model.
var unmodelled = map[reflect.Type][]string{
	// PostMetadata (embeds, files, reactions, ...) is computed by the server
	// for clients; the plugin never reads or writes it.
	reflect.TypeOf(model.Post{}): {"Metadata"},
	// Storage paths, image previews and extracted content: the plugin only
	// uploads text files and attaches them by id.
	reflect.TypeOf(model.FileInfo{}): {"Path", "ThumbnailPath", "PreviewPath", "Width", "Height",
		"HasPreviewImage", "MiniPreview", "Content", "RemoteId", "Archived"},
}

// withoutUnmodelled returns a deep copy of v (made with gob itself) with the
// unmodelled fields zeroed.
func withoutUnmodelled(v any) (any, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, err
	}
	cp := reflect.New(reflect.TypeOf(v))
	if err := gob.NewDecoder(&buf).DecodeValue(cp); err != nil {
		return nil, err
	}
	zeroUnmodelled(cp)
	return cp.Elem().Interface(), nil
}

func zeroUnmodelled(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			zeroUnmodelled(v.Elem())
		}
	case reflect.Struct:
		for _, name := range unmodelled[v.Type()] {
			if f := v.FieldByName(name); f.CanSet() {
				f.SetZero()
			}
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				zeroUnmodelled(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			zeroUnmodelled(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			zeroUnmodelled(v.MapIndex(k))
		}
	}
}
