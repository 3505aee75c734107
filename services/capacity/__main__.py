from shared.startup import main

main("capacity")
