"""grpcserve, and the other long-running commands the services share."""
