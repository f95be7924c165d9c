package realserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// APIPrefix is where the server routes the plugin's REST API v1.
const APIPrefix = "/plugins/" + PluginID + "/api/v1"

// APIClient calls the plugin's REST API through the server as one person: with a token
// (Authorization: Bearer) or, when Cookies is set, with the session cookies a browser holds.
type APIClient struct {
	Site    string // the server's URL
	Token   string
	Cookies []*http.Cookie
	HTTP    *http.Client // nil: a client that does not follow redirects
}

// APIResponse is one answer, read whole.
type APIResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r APIResponse) JSON(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("status %d, body %q is not the JSON expected: %w", r.Status, short(r.Body), err)
	}
	return nil
}

// ErrorText is the "error" of a JSON error body, or the body itself.
func (r APIResponse) ErrorText() string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(r.Body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return short(r.Body)
}

func (r APIResponse) String() string { return fmt.Sprintf("%d %s", r.Status, short(r.Body)) }

func short(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

var noRedirects = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Do sends method path (under APIPrefix unless it starts with "/api/v4" or "/plugins") with body:
// nil, []byte or string as they are, anything else as JSON. headers are name, value pairs.
func (c *APIClient) Do(ctx context.Context, method, path string, body any, headers ...string) (APIResponse, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return APIResponse{}, err
		}
		rd = bytes.NewReader(j)
	}
	url := c.Site + path
	if !strings.HasPrefix(path, "/api/v4") && !strings.HasPrefix(path, "/plugins") {
		url = c.Site + APIPrefix + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return APIResponse{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for _, ck := range c.Cookies {
		req.AddCookie(ck)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	hc := c.HTTP
	if hc == nil {
		hc = noRedirects
	}
	resp, err := hc.Do(req)
	if err != nil {
		return APIResponse{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return APIResponse{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return APIResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Cookie is the named cookie, or nil.
func (c *APIClient) Cookie(name string) *http.Cookie {
	for _, ck := range c.Cookies {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// CookieLogin logs in with a username and password as the web app does (POST
// /api/v4/users/login) and keeps the cookies the server sets (MMAUTHTOKEN, MMUSERID, MMCSRF).
func CookieLogin(ctx context.Context, site, login, password string) (*APIClient, error) {
	c := &APIClient{Site: site}
	resp, err := c.Do(ctx, "POST", "/api/v4/users/login", map[string]string{"login_id": login, "password": password},
		"X-Requested-With", "XMLHttpRequest")
	if err != nil {
		return nil, err
	}
	if resp.Status != http.StatusOK {
		return nil, fmt.Errorf("login %s: %s", login, resp)
	}
	c.Cookies = (&http.Response{Header: resp.Header}).Cookies()
	for _, name := range []string{"MMAUTHTOKEN", "MMCSRF", "MMUSERID"} {
		if c.Cookie(name) == nil {
			return nil, fmt.Errorf("login %s: no %s cookie in %v", login, name, resp.Header.Values("Set-Cookie"))
		}
	}
	return c, nil
}

// Session is the plugin's session JSON (the fields the tests read).
type Session struct {
	ID               string `json:"id"`
	ChannelID        string `json:"channel_id"`
	OwnerID          string `json:"owner_id"`
	ProjectPath      string `json:"project_path"`
	PermissionMode   string `json:"permission_mode"`
	State            string `json:"state"`
	RootPostID       string `json:"root_post_id"`
	PendingApprovals int    `json:"pending_approvals"`
	LastSeq          int64  `json:"last_seq"`
}
