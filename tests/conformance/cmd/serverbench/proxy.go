package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// releaseProxy stands between the CLI and the fake Messages API and notes when each text chunk
// of a streamed answer is released to the CLI: the moment its SSE event is read from the fake,
// right before the proxy writes and flushes it (FlushInterval -1). The fake paces the chunks
// (delay_ms); the proxy is where the benchmark's clock starts.
type releaseProxy struct {
	URL string
	srv *http.Server

	mu     sync.Mutex
	chunks []chunk
}

type chunk struct {
	text string
	at   time.Time
}

func startReleaseProxy(upstream string) (*releaseProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &releaseProxy{URL: "http://" + l.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			resp.Body = &sseTap{rc: resp.Body, p: p}
		}
		return nil
	}
	p.srv = &http.Server{Handler: rp}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *releaseProxy) Close() { _ = p.srv.Close() }

// released is the time each chunk text was released, first release wins.
func (p *releaseProxy) released() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]time.Time{}
	for _, c := range p.chunks {
		if _, ok := out[c.text]; !ok {
			out[c.text] = c.at
		}
	}
	return out
}

// sseTap reads the SSE stream through and records every text_delta as its event completes.
type sseTap struct {
	rc  io.ReadCloser
	p   *releaseProxy
	buf []byte
}

func (s *sseTap) Read(b []byte) (int, error) {
	n, err := s.rc.Read(b)
	if n > 0 {
		now := time.Now()
		s.buf = append(s.buf, b[:n]...)
		for {
			i := bytes.Index(s.buf, []byte("\n\n"))
			if i < 0 {
				break
			}
			s.event(s.buf[:i], now)
			s.buf = s.buf[i+2:]
		}
	}
	return n, err
}

func (s *sseTap) event(ev []byte, at time.Time) {
	for _, line := range bytes.Split(ev, []byte("\n")) {
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok || !bytes.Contains(data, []byte("text_delta")) {
			continue
		}
		var d struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if json.Unmarshal(data, &d) == nil && d.Delta.Type == "text_delta" {
			s.p.mu.Lock()
			s.p.chunks = append(s.p.chunks, chunk{text: d.Delta.Text, at: at})
			s.p.mu.Unlock()
		}
	}
}

func (s *sseTap) Close() error { return s.rc.Close() }
