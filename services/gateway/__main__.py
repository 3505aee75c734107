from shared.startup import main

main("gateway")
