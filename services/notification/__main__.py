from shared.startup import main

main("notification")
