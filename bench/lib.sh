# Shared by bench/compare.sh and bench/ceiling.sh (sourced, not run).

# ports_free P...: fails, saying which, when something listens on a port,
# since it would answer in the place of what the script starts.
ports_free() {
	local p
	for p in "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "port $p is taken; stop what listens there first" >&2
			return 1
		fi
	done
}

# haproxy_cfg PORT B1 B2: HAProxy's configuration for the runs: one
# thread, cookie stickiness, long tunnel timeouts, and the X-Forwarded-*
# headers latch, Caddy and Traefik set by default.
haproxy_cfg() {
	cat <<CFG
global
	nbthread 1
	maxconn 9600
	log stderr format raw local0 err
defaults
	mode http
	option http-keep-alive
	timeout connect 5s
	timeout client 1h
	timeout server 1h
	timeout tunnel 1h
	timeout http-keep-alive 90s
	option forwardfor
frontend web
	bind 127.0.0.1:$1
	http-request set-header X-Forwarded-Proto http
	http-request set-header X-Forwarded-Host %[req.hdr(host)]
	default_backend b
backend b
	balance roundrobin
	cookie SRV insert indirect nocache
	http-reuse always
	server b1 127.0.0.1:$2 cookie b1
	server b2 127.0.0.1:$3 cookie b2
CFG
}
