package main

import "io"

func rpcRecord(dir string) error                        { return nil }
func rpcClientCheck(w io.Writer, s string) (int, error) { return 0, nil }
func rpcServe(s string) error                           { return nil }
