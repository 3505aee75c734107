from shared.runner import main

main("gateway")
