// Package server implements a small HTTP key-value service.
package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"example.com/kv/internal/storage"
)

// ErrNotFound is returned when a key does not exist.
var ErrNotFound = errors.New("not found")

const defaultCapacity = 128

// Store is the interface a backend must satisfy.
type Store interface {
	Get(key string) ([]byte, error)
	Put(key string, value []byte) error
	Delete(key string) error
}

// Server serves the key-value API.
type Server struct {
	mu      sync.RWMutex
	backend Store
	hits    map[string]int
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Options configures a Server.
type Options struct {
	Capacity int
	ReadOnly bool
}

type Pair[K comparable, V any] struct {
	Key   K
	Value V
}

// New creates a Server backed by the given store.
func New(backend Store, opts Options) *Server {
	if opts.Capacity == 0 {
		opts.Capacity = defaultCapacity
	}
	return &Server{backend: backend, hits: make(map[string]int, opts.Capacity)}
}

// ServeHTTP dispatches on the request method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err error
	switch r.Method {
	case http.MethodGet:
		err = s.handleGet(w, r)
	case http.MethodPut:
		err = s.handlePut(w, r)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
	if err != nil {
		writeError(w, err)
	}
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) error {
	key := r.URL.Path
	s.mu.Lock()
	s.hits[key]++
	s.mu.Unlock()
	v, err := s.backend.Get(key)
	if err != nil {
		return err
	}
	_, err = w.Write(v)
	return err
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request) error {
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return err
	}
	return s.backend.Put(r.URL.Path, []byte(body["value"]))
}

// Hits reports how often a key was read.
func (s Server) Hits(key string) int {
	return s.hits[key]
}

func writeError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusInternalServerError)
}

func Map[K comparable, V any, R any](in []Pair[K, V], f func(V) R) []R {
	out := make([]R, 0, len(in))
	for _, p := range in {
		out = append(out, f(p.Value))
	}
	return out
}

func openDefault() (*storage.Disk, error) {
	return storage.Open("/var/lib/kv")
}
