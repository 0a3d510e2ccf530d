//go:build windows

package port

func openWindowsPort(name string) error { return nil }

type winHandle struct{ h uintptr }

func (w *winHandle) Close() error { return nil }
