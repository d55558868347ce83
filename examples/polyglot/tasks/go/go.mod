module profile

// wasip1 support arrived in Go 1.21. Standard library only: no requires.
go 1.21
