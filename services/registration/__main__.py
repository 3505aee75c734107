from shared.startup import main

main("registration")
