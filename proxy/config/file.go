package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// ParseFile parses a YAML file: one or more documents separated by "---",
// each either latch's own model or a Kubernetes object (see the package
// documentation). name is used in errors and as the Origin of everything the
// file declares; pass the path the user gave. The documents are combined
// with Merge, so a service declared in one document serves the
// IngressRoutes of another. An empty file is an empty Config.
//
// The error is an errors.Join of one-line errors, one per bad document,
// each starting with name and, where known, the line ("latch.yaml: line 7:
// unknown field \"prioriy\"").
func ParseFile(name string, data []byte) (*Config, error) {
	name = displayName(name)
	var parts []*Config
	var errs []error
	for _, d := range splitDocuments(data) {
		part, err := parseDocument(name, d.text, d.line, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		parts = append(parts, part)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return Merge(parts...)
}

// displayName keeps a file name that needs quoting (a control character,
// a newline) from breaking the one-line rule of errors.
func displayName(name string) string {
	if controlChar(name) >= 0 || strings.ContainsAny(name, "\r\n\t") || !utf8.ValidString(name) {
		return strconv.Quote(name)
	}
	return name
}

// defaultRouteName names the i-th unnamed route of a file: "FILE#i", with
// the file's base name reduced to the characters route names allow.
func defaultRouteName(file string, i int) string {
	base := []byte(filepath.Base(file))
	for j, c := range base {
		if !isAlnum(c) && !strings.ContainsRune("-_.", rune(c)) {
			base[j] = '_'
		}
	}
	if len(base) > 200 {
		base = base[len(base)-200:]
	}
	if len(base) == 0 || !isAlnum(base[0]) {
		base = append([]byte("file"), base...)
	}
	return string(base) + "#" + strconv.Itoa(i)
}

// parseDocument dispatches one document on its apiVersion and kind; inList
// is set for the items of a List, which may not be Lists themselves.
func parseDocument(name string, doc []byte, line int, inList bool) (*Config, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, yamlError(err, doc, line)
	}
	j = bytes.TrimSpace(j)
	if bytes.Equal(j, []byte("null")) {
		return &Config{}, nil // only comments
	}
	var head map[string]json.RawMessage
	if err := json.Unmarshal(j, &head); err != nil {
		return nil, errorf("%sexpected a mapping with entrypoints, services and routes, or a Kubernetes object", lineNote(line))
	}
	var apiVersion, kind string
	_ = json.Unmarshal(head["apiVersion"], &apiVersion)
	_ = json.Unmarshal(head["kind"], &kind)
	if apiVersion == "" && kind == "" {
		return parseLatchDocument(name, doc, line)
	}
	return parseObject(name, doc, j, line, apiVersion, kind, inList)
}

// fileConfig is latch's own document. Keys are lowerCamel; unknown keys are
// errors.
type fileConfig struct {
	Entrypoints map[string]string       `json:"entrypoints"`
	Services    map[string]*fileService `json:"services"`
	Routes      []fileRoute             `json:"routes"`
}

type fileService struct {
	Servers    []string `json:"servers"`
	DNS        string   `json:"dns"`        // HOST:PORT, dns:// optional
	Kubernetes string   `json:"kubernetes"` // [NAMESPACE/]SERVICE:PORT, k8s:// optional
}

type fileRoute struct {
	Name        string      `json:"name"`
	Rule        string      `json:"rule"`
	Service     string      `json:"service"`
	Priority    int         `json:"priority"`
	Entrypoints []string    `json:"entrypoints"`
	Strategy    string      `json:"strategy"`
	Strict      bool        `json:"strict"`
	Sticky      *fileSticky `json:"sticky"`
}

// fileSticky mirrors Traefik's sticky: {cookie: {...}}, leaving room for
// other kinds of stickiness.
type fileSticky struct {
	Cookie *fileCookie `json:"cookie"`
}

type fileCookie struct {
	Name     string  `json:"name"`
	Secure   bool    `json:"secure"`
	HTTPOnly *bool   `json:"httpOnly"` // nil: true
	SameSite string  `json:"sameSite"`
	MaxAge   seconds `json:"maxAge"`
	Path     string  `json:"path"` // "": "/"
	Domain   string  `json:"domain"`
}

// seconds is a cookie max age given as a number of seconds or a duration
// string such as "1h".
type seconds struct {
	d   time.Duration
	err error
}

func (s *seconds) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		if str = strings.TrimSpace(str); str != "" {
			s.d, s.err = parseMaxAge("maxAge", str)
		}
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		s.err = errorf("maxAge %s: expected a number of seconds or a duration such as 1h", quote(string(b)))
		return nil
	}
	if f < 0 || f != float64(int64(f)) || f > float64(1<<62)/float64(time.Second) {
		s.err = errorf("maxAge %s: expected a whole number of seconds, 0 or more", quote(string(b)))
		return nil
	}
	s.d = time.Duration(f) * time.Second
	return nil
}

func parseLatchDocument(name string, doc []byte, line int) (*Config, error) {
	var fc fileConfig
	if err := yaml.UnmarshalStrict(doc, &fc); err != nil {
		return nil, yamlError(err, doc, line)
	}
	c := &Config{}
	at := lineNote(line)

	epNames := make([]string, 0, len(fc.Entrypoints))
	for n := range fc.Entrypoints {
		epNames = append(epNames, n)
	}
	sort.Strings(epNames)
	for _, n := range epNames {
		if !validEntrypointName(n) {
			return nil, errorf("%sentrypoint name %s: expected %s", at, quote(n), entrypointNameRule)
		}
		addr, err := normalizeListenAddr(strings.TrimSpace(fc.Entrypoints[n]))
		if err != nil {
			return nil, errorf("%sentrypoint %s: %w", at, quote(n), err)
		}
		c.Entrypoints = append(c.Entrypoints, Entrypoint{Name: n, Addr: addr, Origin: name})
	}

	svcNames := make([]string, 0, len(fc.Services))
	for n := range fc.Services {
		svcNames = append(svcNames, n)
	}
	sort.Strings(svcNames)
	for _, n := range svcNames {
		svc, err := fileServiceToService(n, fc.Services[n])
		if err != nil {
			return nil, errorf("%s%w", at, err)
		}
		svc.Origin = name
		c.Services = append(c.Services, svc)
	}

	for i, fr := range fc.Routes {
		r, err := fileRouteToRoute(name, i, fr)
		if err != nil {
			return nil, errorf("%s%w", at, err)
		}
		c.Routes = append(c.Routes, r)
	}
	return c, nil
}

func fileServiceToService(name string, fs *fileService) (Service, error) {
	ctx := "service " + quote(name)
	if !validServiceName(name) {
		return Service{}, errorf("service name %s: expected %s", quote(name), serviceNameRule)
	}
	n := 0
	if fs != nil {
		for _, set := range []bool{fs.Servers != nil, fs.DNS != "", fs.Kubernetes != ""} {
			if set {
				n++
			}
		}
	}
	if n != 1 {
		return Service{}, errorf("%s: expected exactly one of servers, dns or kubernetes", ctx)
	}
	var (
		svc Service
		err error
	)
	switch {
	case fs.Servers != nil:
		if len(fs.Servers) == 0 {
			return Service{}, errorf("%s: servers is empty", ctx)
		}
		if svc, err = parseStatic(fs.Servers, ctx+": servers", true); err != nil {
			return Service{}, err
		}
	case fs.DNS != "":
		src := dnsScheme + strings.TrimPrefix(fs.DNS, dnsScheme)
		svc, err = parseSource(src, src)
	default:
		src := k8sScheme + strings.TrimPrefix(fs.Kubernetes, k8sScheme)
		svc, err = parseSource(src, src)
	}
	if err != nil {
		return Service{}, errorf("%s: %w", ctx, err)
	}
	svc.Name = name
	return svc, nil
}

func fileRouteToRoute(file string, i int, fr fileRoute) (Route, error) {
	r := Route{
		Name:     fr.Name,
		Rule:     strings.TrimSpace(fr.Rule),
		Priority: fr.Priority,
		Service:  fr.Service,
		Strict:   fr.Strict,
		Origin:   file,
	}
	if r.Name == "" {
		r.Name = defaultRouteName(file, i)
	}
	ctx := "route " + quote(r.Name)
	if r.Rule == "" {
		return Route{}, errorf("%s: rule is missing", ctx)
	}
	if r.Service == "" {
		return Route{}, errorf("%s: service is missing", ctx)
	}
	if fr.Priority < 0 {
		return Route{}, errorf("%s: priority %d: expected an integer from 1 to 2147483647 (or none)", ctx, fr.Priority)
	}
	if len(fr.Entrypoints) > 0 {
		r.Entrypoints = append([]string(nil), fr.Entrypoints...)
	}
	if fr.Strategy != "" {
		s, err := parseStrategy(fr.Strategy)
		if err != nil {
			return Route{}, errorf("%s: %w", ctx, err)
		}
		r.Strategy = s
	}
	if fr.Sticky != nil {
		if fr.Sticky.Cookie == nil {
			return Route{}, errorf("%s: sticky needs cookie (sticky: {cookie: {name: NAME}})", ctx)
		}
		c, err := fileCookieToCookie(r.Name, fr.Sticky.Cookie)
		if err != nil {
			return Route{}, errorf("%s: %w", ctx, err)
		}
		r.Sticky = c
	}
	if err := validateRoute(r); err != nil {
		return Route{}, err
	}
	return r, nil
}

// fileCookieToCookie applies latch's defaults to a cookie from a file or an
// IngressRoute: HttpOnly unless httpOnly: false is written out, Path=/, and
// a name derived from the route when none is given (Traefik also derives
// one; its names differ).
func fileCookieToCookie(route string, fc *fileCookie) (*Cookie, error) {
	if fc.MaxAge.err != nil {
		return nil, fc.MaxAge.err
	}
	c := DefaultCookie(fc.Name)
	if c.Name == "" {
		sum := sha256.Sum256([]byte(route))
		c.Name = "_" + hex.EncodeToString(sum[:3])
	}
	c.Secure = fc.Secure
	if fc.HTTPOnly != nil {
		c.HTTPOnly = *fc.HTTPOnly
	}
	var err error
	if c.SameSite, err = parseSameSite("sameSite", fc.SameSite); err != nil {
		return nil, err
	}
	c.MaxAge = fc.MaxAge.d
	if fc.Path != "" {
		c.Path = fc.Path
	}
	c.Domain = fc.Domain
	if err := validateCookie(c); err != nil {
		return nil, err
	}
	return &c, nil
}
