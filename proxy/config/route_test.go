package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latch-proxy/latch/proxy/config"
)

func sticky(name string, edit func(*config.Cookie)) *config.Cookie {
	c := config.DefaultCookie(name)
	if edit != nil {
		edit(&c)
	}
	return &c
}

func TestParseRoute(t *testing.T) {
	const seedRule = "PathPrefix(`/socket.io`, `/meta`)"
	tests := []struct {
		name, in string
		want     config.Route
		err      string
	}{
		{name: "the seed rule with priority and cookie",
			in:   seedRule + " -> chat; priority=10; cookie=heyy",
			want: config.Route{Rule: seedRule, Service: "chat", Priority: 10, Sticky: sticky("heyy", nil)}},
		{name: "an arrow inside backticks belongs to the rule",
			in:   "Header(`X-Dir`, `a->b`) -> chat",
			want: config.Route{Rule: "Header(`X-Dir`, `a->b`)", Service: "chat"}},
		{name: "an arrow inside double quotes with an escaped quote belongs to the rule",
			in:   `Header("X", "say \"->\" here") -> chat`,
			want: config.Route{Rule: `Header("X", "say \"->\" here")`, Service: "chat"}},
		{name: "spaces around the arrow are optional",
			in:   "Path(`/`)->chat",
			want: config.Route{Rule: "Path(`/`)", Service: "chat"}},
		{name: "every option at once",
			in: "Host(`a.example`) -> chat; name=chat-main; priority=2147483647; entrypoints=web, websecure; strategy=P2C; strict;" +
				" cookie=heyy; cookie-secure; cookie-httponly=false; cookie-samesite=None; cookie-max-age=1h30m;" +
				" cookie-path=/socket.io; cookie-domain=.example.com",
			want: config.Route{Name: "chat-main", Rule: "Host(`a.example`)", Service: "chat", Priority: 2147483647,
				Entrypoints: []string{"web", "websecure"}, Strategy: config.StrategyP2C, Strict: true,
				Sticky: &config.Cookie{Name: "heyy", Secure: true, HTTPOnly: false, SameSite: config.SameSiteNone,
					MaxAge: 90 * time.Minute, Path: "/socket.io", Domain: ".example.com"}}},
		{name: "bare flags also take true and false",
			in:   "Path(`/`) -> chat; strict=false; cookie=c; cookie-secure=true",
			want: config.Route{Rule: "Path(`/`)", Service: "chat", Sticky: sticky("c", func(c *config.Cookie) { c.Secure = true })}},
		{name: "a max age in plain seconds",
			in:   "Path(`/`) -> chat; cookie=c; cookie-max-age=3600",
			want: config.Route{Rule: "Path(`/`)", Service: "chat", Sticky: sticky("c", func(c *config.Cookie) { c.MaxAge = time.Hour })}},
		{name: "empty options and a trailing semicolon are ignored",
			in:   "Path(`/`) -> chat; ; priority=1;",
			want: config.Route{Rule: "Path(`/`)", Service: "chat", Priority: 1}},
		{name: "a rule may span lines",
			in:   "Host(`a`)\n  && Path(`/`) -> chat",
			want: config.Route{Rule: "Host(`a`)\n  && Path(`/`)", Service: "chat"}},

		{name: "a missing arrow names the grammar",
			in:  "PathPrefix(`/x`) chat",
			err: "\"PathPrefix(`/x`) chat\": expected 'RULE -> SERVICE[; key=value ...]'"},
		{name: "an arrow only inside quotes is no arrow",
			in:  "Header(`X`, `a -> b`)",
			err: "\"Header(`X`, `a -> b`)\": expected 'RULE -> SERVICE[; key=value ...]'"},
		{name: "an empty rule is rejected",
			in:  " -> chat",
			err: `" -> chat": expected a rule before '->' in 'RULE -> SERVICE[; key=value ...]'`},
		{name: "an empty service is rejected",
			in:  "Path(`/`) -> ; priority=1",
			err: "\"Path(`/`) -> ; priority=1\": expected a service name after '->' in 'RULE -> SERVICE[; key=value ...]'"},
		{name: "an unbalanced backtick is located",
			in:  "PathPrefix(`/x) -> chat",
			err: "\"PathPrefix(`/x) -> chat\": unterminated backtick at byte 11 (expected 'RULE -> SERVICE[; key=value ...]')"},
		{name: "an unbalanced double quote is located",
			in:  `Path("/x) -> chat`,
			err: `"Path(\"/x) -> chat": unterminated double quote at byte 5 (expected 'RULE -> SERVICE[; key=value ...]')`},
		{name: "a second arrow makes a bad service name",
			in:  "Path(`/`) -> chat -> other",
			err: `service name "chat -> other": expected letters, digits, '.', '_' or '-', starting with a letter or digit, at most 253`},
		{name: "a word priority is not an integer",
			in:  "Path(`/`) -> chat; priority=ten",
			err: `priority "ten": expected an integer`},
		{name: "priority zero is out of range",
			in:  "Path(`/`) -> chat; priority=0",
			err: `priority "0": expected an integer from 1 to 2147483647`},
		{name: "a huge priority is out of range",
			in:  "Path(`/`) -> chat; priority=99999999999999999999",
			err: `priority "99999999999999999999": expected an integer from 1 to 2147483647`},
		{name: "a bare priority needs a value",
			in:  "Path(`/`) -> chat; priority",
			err: `option "priority" needs a value (priority=N)`},
		{name: "an unknown option lists the known ones",
			in:  "Path(`/`) -> chat; stikcy",
			err: `unknown option "stikcy" (known: priority, entrypoints, strategy, strict, name, cookie, cookie-secure, cookie-httponly, cookie-samesite, cookie-max-age, cookie-path, cookie-domain)`},
		{name: "a repeated option is rejected",
			in:  "Path(`/`) -> chat; priority=1; priority=2",
			err: `option "priority" is given twice`},
		{name: "a cookie option needs a cookie",
			in:  "Path(`/`) -> chat; cookie-secure",
			err: `cookie-secure needs cookie=NAME`},
		{name: "a cookie name must be a token",
			in:  "Path(`/`) -> chat; cookie=he y",
			err: "cookie name \"he y\": expected an RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~"},
		{name: "a header injected through the cookie name stays escaped",
			in:  "Path(`/`) -> chat; cookie=heyy\r\nSet-Cookie: x",
			err: "cookie name \"heyy\\r\\nSet-Cookie: x\": expected an RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~"},
		{name: "an unknown SameSite is rejected",
			in:  "Path(`/`) -> chat; cookie=c; cookie-samesite=lol",
			err: `cookie-samesite "lol": expected lax, strict or none`},
		{name: "a negative max age is rejected",
			in:  "Path(`/`) -> chat; cookie=c; cookie-max-age=-1s",
			err: `cookie-max-age "-1s": expected a whole number of seconds, 0 or more`},
		{name: "a fractional max age is rejected",
			in:  "Path(`/`) -> chat; cookie=c; cookie-max-age=1.5s",
			err: `cookie-max-age "1.5s": expected a whole number of seconds, 0 or more`},
		{name: "a max age that is no duration is rejected",
			in:  "Path(`/`) -> chat; cookie=c; cookie-max-age=soon",
			err: `cookie-max-age "soon": expected a duration such as 1h or a number of seconds`},
		{name: "an unknown strategy lists the known ones",
			in:  "Path(`/`) -> chat; strategy=fast",
			err: `strategy "fast": expected leastconn, roundrobin or p2c`},
		{name: "an entrypoint listed twice is rejected",
			in:  "Path(`/`) -> chat; entrypoints=web,web",
			err: `entrypoints "web,web": "web" is listed twice`},
		{name: "an empty entrypoint in the list is rejected",
			in:  "Path(`/`) -> chat; entrypoints=web,",
			err: `entrypoint name "" in "web,": expected letters, digits, '-' or '_', at most 63`},
		{name: "a relative cookie path is rejected",
			in:  "Path(`/`) -> chat; cookie=c; cookie-path=socket.io",
			err: `cookie-path "socket.io": expected an absolute path without spaces, control characters or ';'`},
		{name: "a cookie domain must be a host name",
			in:  "Path(`/`) -> chat; cookie=c; cookie-domain=exa mple.com",
			err: `cookie-domain "exa mple.com": expected a host name such as example.com`},
		{name: "a route name with a space is rejected",
			in:  "Path(`/`) -> chat; name=my route",
			err: `route name "my route": expected letters, digits and -_./#:@, starting with a letter or digit, at most 253`},
		{name: "a bad boolean is rejected",
			in:  "Path(`/`) -> chat; strict=maybe",
			err: `strict "maybe": expected true or false`},
		{name: "a control character in the rule is rejected",
			in:  "Path(`/\x00`) -> chat",
			err: "rule \"Path(`/\\x00`)\": contains the control character 0x00"},
		{name: "a long value is cut in the message",
			in:  strings.Repeat("x", 200),
			err: `"` + strings.Repeat("x", 80) + `"...: expected 'RULE -> SERVICE[; key=value ...]'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.ParseRoute(tt.in)
			checkErr(t, err, tt.err)
			if tt.err != "" {
				return
			}
			tt.want.Origin = "--route"
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
			if again, err := config.ParseRoute(got.String()); err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("String() %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}
