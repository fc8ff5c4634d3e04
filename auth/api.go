package auth

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"
)

// TokenPath is where the token API answers.
const TokenPath = "/v1/token"

// Stable error codes of the token API ({"error":{"code":...,"message":...}}).
const (
	CodeUnauthorized     = "unauthorized"       // 401: no API key or a wrong one
	CodeForbidden        = "forbidden"          // 403: no policy, or client id not allowed
	CodeRateLimited      = "rate_limited"       // 429: see Retry-After
	CodeBadRequest       = "bad_request"        // 400: malformed body or parameters
	CodeMethodNotAllowed = "method_not_allowed" // 405: only GET and POST
	CodeNotFound         = "not_found"          // 404: unknown path
	CodeInternal         = "internal"           // 500
)

// Default table sizes for the rate limiters.
const defaultLimiterEntries = 10000

// maxBody bounds a POST body.
const maxBody = 4 << 10

// TokenAPIOptions configure the token API handler.
type TokenAPIOptions struct {
	// Authenticator identifies callers. Required.
	Authenticator Authenticator
	// Issuer mints tokens. Required.
	Issuer *Issuer
	// Policies decide what each identity gets.
	Policies Policies
	// PerIdentity and PerAddress rate-limit callers; a zero Rate disables one.
	// The per-address limit is applied before authentication, so floods of
	// wrong keys are limited too.
	PerIdentity RateLimit
	PerAddress  RateLimit
	// ClientAddr returns the caller's address for the per-address limit.
	// Default: the host part of r.RemoteAddr. Behind a reverse proxy, return
	// the address the proxy reports (and trust only that proxy).
	ClientAddr func(r *http.Request) string
	// MaxLimiterEntries bounds each limiter's table (default 10000).
	MaxLimiterEntries int
	// OnResult, if set, is told the outcome of every request (for metrics
	// and events). It runs on the request goroutine and must not block.
	OnResult func(TokenAPIResult)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets one line per refused request (never keys or tokens).
	// Default: discard.
	Logger *slog.Logger
}

// TokenAPI is the http.Handler for GET and POST /v1/token. It is safe for
// concurrent use and owns no goroutines.
//
// GET takes an optional ?clientId=; POST an optional JSON body
// {"clientId":"..."}. The answer is a TokenResponse with Cache-Control
// no-store.
type TokenAPI struct {
	authn  Authenticator
	issuer *Issuer
	pols   Policies
	byID   *keyedLimiter
	byAddr *keyedLimiter
	addrOf func(*http.Request) string
	result func(TokenAPIResult)
	now    func() time.Time
	log    *slog.Logger
}

// NewTokenAPI returns the token API handler.
func NewTokenAPI(opts TokenAPIOptions) (*TokenAPI, error) {
	var errs []error
	if opts.Authenticator == nil {
		errs = append(errs, errors.New("auth: token api: Authenticator is required"))
	}
	if opts.Issuer == nil {
		errs = append(errs, errors.New("auth: token api: Issuer is required"))
	}
	if err := opts.Policies.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	max := opts.MaxLimiterEntries
	if max <= 0 {
		max = defaultLimiterEntries
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	addrOf := opts.ClientAddr
	if addrOf == nil {
		addrOf = remoteHost
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &TokenAPI{
		authn:  opts.Authenticator,
		issuer: opts.Issuer,
		pols:   opts.Policies,
		byID:   newKeyedLimiter(opts.PerIdentity, max),
		byAddr: newKeyedLimiter(opts.PerAddress, max),
		addrOf: addrOf,
		result: opts.OnResult,
		now:    now,
		log:    l.With("component", "auth.tokenapi"),
	}, nil
}

// TokenAPIResult is the outcome of one token API request. It never holds
// an API key or token.
type TokenAPIResult struct {
	Status   int    // HTTP status
	Code     string // error code; "" on success
	Identity string // authenticated identity, "" before authentication
	Remote   string // caller address as used for rate limiting
	ClientID string // issued client id on success
}

type tokenRequest struct {
	ClientID string `json:"clientId"`
}

// ServeHTTP implements http.Handler.
func (a *TokenAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := TokenAPIResult{Remote: a.addrOf(r)}
	// The outcome is reported before the answer is written, so a caller
	// that has the answer can rely on the report having been made.
	report := func() {
		if a.result != nil {
			a.result(res)
		}
	}
	fail := func(status int, code, msg string) {
		res.Status, res.Code = status, code
		report()
		writeError(w, status, code, msg)
	}
	if r.URL.Path != TokenPath {
		fail(http.StatusNotFound, CodeNotFound, "no such endpoint")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use GET or POST")
		return
	}
	now := a.now()
	if d := a.byAddr.allow(res.Remote, now); d > 0 {
		a.log.Debug("token request rate limited", "remote", res.Remote, "limit", "address")
		setRetryAfter(w, d)
		fail(http.StatusTooManyRequests, CodeRateLimited, "too many token requests")
		return
	}
	identity, err := a.authn.Authenticate(r)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			a.log.Info("token request unauthenticated", "remote", res.Remote)
			w.Header().Set("WWW-Authenticate", `Bearer realm="courier"`)
			fail(http.StatusUnauthorized, CodeUnauthorized, "missing or invalid API key")
			return
		}
		a.log.Error("token request authenticator failed", "remote", res.Remote, "err", err)
		fail(http.StatusInternalServerError, CodeInternal, "authentication failed")
		return
	}
	res.Identity = identity
	if d := a.byID.allow(identity, now); d > 0 {
		a.log.Debug("token request rate limited", "remote", res.Remote, "identity", identity, "limit", "identity")
		setRetryAfter(w, d)
		fail(http.StatusTooManyRequests, CodeRateLimited, "too many token requests")
		return
	}
	var req tokenRequest
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
		if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
			fail(http.StatusBadRequest, CodeBadRequest, "body must be JSON {\"clientId\": string}")
			return
		}
	} else {
		req.ClientID = r.URL.Query().Get("clientId")
	}
	pol, err := a.pols.For(identity)
	if err != nil {
		a.log.Warn("token request without policy", "remote", res.Remote, "identity", identity)
		fail(http.StatusForbidden, CodeForbidden, "no policy for this identity")
		return
	}
	resp, err := a.issuer.Issue(identity, pol, req.ClientID, now)
	switch {
	case errors.Is(err, ErrClientIDNotAllowed):
		fail(http.StatusForbidden, CodeForbidden, "client id not allowed for this identity")
		return
	case errors.Is(err, ErrInvalidIdentity):
		fail(http.StatusForbidden, CodeForbidden, "identity cannot be used as an MQTT identity")
		return
	case err != nil:
		a.log.Error("token issue failed", "identity", identity, "err", err)
		fail(http.StatusInternalServerError, CodeInternal, "could not issue token")
		return
	}
	res.Status, res.ClientID = http.StatusOK, resp.ClientID
	report()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
}

// ErrorBody is the JSON shape of every token API error.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b ErrorBody
	b.Error.Code = code
	b.Error.Message = msg
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}
