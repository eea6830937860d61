package config

import (
	"strconv"
	"strings"
	"time"
)

// HealthCheck is an active health check of a service's backends: GET Path
// every Interval, each within Timeout; Unhealthy consecutive failures (an
// error or a status of 400 and up) take a backend out of new sessions and
// sticky ones, Healthy consecutive successes bring it back.
type HealthCheck struct {
	Path      string
	Interval  time.Duration
	Timeout   time.Duration
	Healthy   int
	Unhealthy int
}

// ParseHealthCheck reads the --health-check form
// "SERVICE=PATH[; interval=5s; timeout=2s; healthy=2; unhealthy=3]".
func ParseHealthCheck(s string) (string, HealthCheck, error) {
	hc := HealthCheck{Interval: 5 * time.Second, Timeout: 2 * time.Second, Healthy: 2, Unhealthy: 3}
	head, opts, _ := strings.Cut(s, ";")
	name, path, ok := strings.Cut(strings.TrimSpace(head), "=")
	if !ok || !validServiceName(name) || !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") {
		return "", hc, errorf("%s: expected SERVICE=/PATH[; interval=5s; timeout=2s; healthy=2; unhealthy=3]", quote(s))
	}
	hc.Path = path
	for _, opt := range strings.Split(opts, ";") {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "interval", "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return "", hc, errorf("%s %s: expected a positive duration such as 5s", k, quote(v))
			}
			if k == "interval" {
				hc.Interval = d
			} else {
				hc.Timeout = d
			}
		case "healthy", "unhealthy":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				return "", hc, errorf("%s %s: expected a count from 1 to 100", k, quote(v))
			}
			if k == "healthy" {
				hc.Healthy = n
			} else {
				hc.Unhealthy = n
			}
		default:
			return "", hc, errorf("unknown option %s (known: interval, timeout, healthy, unhealthy)", quote(k))
		}
	}
	return name, hc, nil
}
