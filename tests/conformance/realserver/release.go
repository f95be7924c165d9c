package realserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// ReleaseProxy stands between the CLI and the fake Messages API and notes when each text chunk
// of a streamed answer is released to the CLI: the moment its SSE event is read from the fake,
// right before the proxy writes and flushes it (FlushInterval -1). The fake paces the chunks
// (delay_ms); the proxy is where a latency benchmark's clock starts (cmd/serverbench: until a
// websocket client has the text; browser_test.go: until a browser's DOM shows it).
type ReleaseProxy struct {
	URL string
	srv *http.Server

	mu     sync.Mutex
	chunks []chunk
}

type chunk struct {
	text string
	at   time.Time
}

// StartReleaseProxy listens on 127.0.0.1 in front of upstream (the fake's base URL).
func StartReleaseProxy(upstream string) (*ReleaseProxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &ReleaseProxy{URL: "http://" + l.Addr().String()}
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

func (p *ReleaseProxy) Close() { _ = p.srv.Close() }

// Released is the time each chunk text was released, first release wins.
func (p *ReleaseProxy) Released() map[string]time.Time {
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
	p   *ReleaseProxy
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

// ReleaseOf is when the chunk containing word was released.
func ReleaseOf(released map[string]time.Time, word string) (time.Time, bool) {
	for text, at := range released {
		if strings.Contains(text, word) {
			return at, true
		}
	}
	return time.Time{}, false
}

// Pct is the p-th percentile of d by nearest rank (p 100: the largest); d is not changed.
func Pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

// Ms is a duration in milliseconds with one decimal.
func Ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
