// Package rules parses Traefik router rules and finds the route a request
// belongs to.
//
// Both dialects are accepted unchanged, and may be mixed in one rule:
//
//	Host(`a.com`, `b.com`) && PathPrefix(`/socket.io`, `/meta`)   // v2
//	Host(`a.com`) && (PathPrefix(`/api`) || !Method(`POST`))       // v3
//
// Matchers: Host, HostHeader, HostRegexp, Path, PathPrefix, PathRegexp,
// Method, Header, Headers, HeaderRegexp, HeadersRegexp, Query, QueryRegexp
// and ClientIP, combined with &&, || and ! (Go precedence) and parentheses.
// Arguments are Go string literals: raw strings in backticks or interpreted
// strings in double quotes. As in Traefik, a matcher name may also be spelled
// in lower case, upper case or title case ("pathprefix", "PATHPREFIX",
// "Pathprefix"), and an empty argument is an error.
//
// Where one spelling means different things in v2 and v3 the argument decides:
//
//   - Several arguments mean "any of" (Host, HostRegexp, Path, PathPrefix,
//     Method, ClientIP).
//   - HostRegexp, Path and PathPrefix arguments that contain gorilla/mux
//     templates ({name} or {name:pattern}) are v2 templates, translated to
//     anchored regular expressions; a HostRegexp with several arguments is v2
//     as well, so each argument is a template (a literal host is matched
//     exactly). A single HostRegexp argument without a template is a v3 Go
//     regular expression, unanchored.
//   - Query(`k`, `v`) and Query(`k`) are v3 (the first value of k equals v, or
//     is empty). Query(`k=v`, ...) is v2: every pair must be present; `k=`
//     means "k present with any value"; a value may be a template.
//   - Headers and HeadersRegexp (v2) take key/value pairs that must all
//     match; Header and HeaderRegexp (v3) take exactly one pair.
//
// Known differences from Traefik, all forced by [Request] exposing only the
// first value of a header or query parameter: Header, HeaderRegexp, Query
// and QueryRegexp look at that first value only. Method compares without
// regard to case. HostRegexp (both dialects) sees the host lowercased with
// its port removed.
//
// Parse compiles a rule once; [Rule] and [Index] are immutable and safe for
// concurrent use, and their Match methods do not allocate.
package rules
