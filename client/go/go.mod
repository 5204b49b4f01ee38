module goru.invalid/client

go 1.19
