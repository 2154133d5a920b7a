package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"time"
)

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

// displayAddr turns a wildcard listen address into one a client can dial.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// newToken returns 32 random bytes, URL-safe base64, prefixed so that a
// leaked token is recognisable in logs and by secret scanners.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return "vega_" + base64.RawURLEncoding.EncodeToString(b), nil
}
